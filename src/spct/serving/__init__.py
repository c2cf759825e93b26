"""Serving the GRM: a KServe predictor with dynamic batching, voting and the meta RM.

Heavy pieces (torch, kserve's server) load only when used; importing this
package stays cheap for the CLI and the deploy step.
"""

from spct.serving.bundle import Bundle, BundleConfig, BundleError, resolve, save_bundle
from spct.serving.protocol import Defaults, JudgeRequest, JudgeResult, Limits, RequestError, parse_v1, parse_v2

__all__ = [
    "Bundle", "BundleConfig", "BundleError", "Defaults", "JudgeRequest", "JudgeResult", "Limits",
    "RequestError", "parse_v1", "parse_v2", "resolve", "save_bundle",
]
