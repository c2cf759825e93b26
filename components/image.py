"""The image components run in: named once in ``spct.k8s.settings``; the pipeline's ``image`` parameter overrides it per task."""

from spct.k8s.settings import DEFAULT_IMAGE

__all__ = ["DEFAULT_IMAGE"]
