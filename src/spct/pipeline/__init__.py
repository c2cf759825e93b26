"""Compile, run locally and submit the Kubeflow pipeline; multi-node training jobs; stage functions."""

from spct.pipeline.run import compile_pipeline, load_pipeline, run_local, submit

__all__ = ["compile_pipeline", "load_pipeline", "run_local", "submit"]
