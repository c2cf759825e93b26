"""Models and batched sampling: the generation engine every other part calls."""

from spct.engine.models import Engine, ModelNotAvailable, load_model
from spct.engine.openai import OpenAIEngine, open_engine
from spct.engine.sampler import Generation, SamplingParams, generate
from spct.engine.tiny import build_tiny

__all__ = [
    "Engine", "Generation", "ModelNotAvailable", "OpenAIEngine", "SamplingParams", "build_tiny", "generate", "load_model",
    "open_engine",
]
