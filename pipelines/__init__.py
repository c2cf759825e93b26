"""The SPCT pipeline (wiring only) and its Kubernetes task settings."""
