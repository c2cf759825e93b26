"""The image components run in; the pipeline overrides it per task from its ``image`` parameter."""

DEFAULT_IMAGE = "ghcr.io/spct/spct:0.1.0"
