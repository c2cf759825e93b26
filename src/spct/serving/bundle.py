"""Where the served GRM comes from, and the directory layout the loader expects.

A *GRM bundle* is a directory (what the pipeline logs to MLflow and registers)::

    spct.json          voting and sampling defaults (:class:`BundleConfig`)
    config.json ...    the Hugging Face model (safetensors) and its tokenizer
    meta_rm/           optional: the meta RM, as spct.train saves it

``resolve`` accepts an MLflow URI (``models:/NAME@champion``, ``models:/NAME/3``,
``runs:/ID/path``), a local directory (KServe's storage-initializer mounts
``storageUri`` at ``/mnt/models``), a ``file://`` URI, or an engine spec
(``tiny``, ``demo``, a ``.gguf`` file) for local use without a bundle.
When MLflow's artifact holds the bundle further down (an ``artifact_path``, or a
pyfunc model's ``data/<name>/``), that folder is used.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spct.engine.sampler import SamplingParams

CONFIG_FILE = "spct.json"
MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
KSERVE_MOUNT = "/mnt/models"


_SAMPLING = SamplingParams()  # the one place sampling defaults are declared (spct.engine.sampler)

class BundleError(ValueError):
    """A model source that cannot be served; the message names the file or URI."""


class BundleConfig(BaseModel):
    """``spct.json``: the defaults a request gets for the options it leaves out."""

    model_config = ConfigDict(extra="forbid")

    format: int = Field(1, description="layout version of the bundle")
    name: str = Field("spct-grm", description="model name the pipeline registered")
    version: str | None = Field(None, description="registry version; filled in from MLflow when served from models:/")
    k: int = Field(4, ge=1, le=32, description="samples voted per request by default")
    k_meta: int | None = Field(None, ge=1, description="MetaRM@k default (needs meta_rm/)")
    temperature: float = Field(_SAMPLING.temperature, ge=0.0, le=2.0)
    top_p: float = Field(_SAMPLING.top_p, gt=0.0, le=1.0)
    max_new_tokens: int = Field(_SAMPLING.max_new_tokens, ge=1, le=4096)
    min_new_tokens: int = Field(0, ge=0, le=4096, description="benchmarks set it to max_new_tokens for equal-length generations")
    meta_rm: str | None = Field(None, description="meta RM folder inside the bundle (default: meta_rm/ when present)")


@dataclass(frozen=True)
class Bundle:
    """A resolved model source: what the predictor loads."""

    spec: str  # a local model directory or an engine spec
    config: BundleConfig
    source: str  # what the user gave
    meta_rm_dir: Path | None = None

    @property
    def version(self) -> str:
        return self.config.version or "local"


def read_config(directory: Path) -> BundleConfig:
    path = directory / CONFIG_FILE
    try:
        return BundleConfig.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON: {e}") from e
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise BundleError(f"{path}: {problems}") from e


def find_bundle_dir(root: Path, depth: int = 2) -> Path | None:
    """The folder under ``root`` (itself or up to ``depth`` levels down) holding ``spct.json``.

    MLflow nests what it logs: a pyfunc model keeps its data under ``data/<name>/``.
    """
    for level in range(depth + 1):
        hits = sorted(p.parent for p in root.glob("/".join(["*"] * level + [CONFIG_FILE])))
        if len(hits) > 1:
            raise BundleError(f"{root}: more than one {CONFIG_FILE} {level} level(s) down: {[str(h) for h in hits]}")
        if hits:
            return hits[0]
    return None


def _mlflow_download(uri: str, dst: Path | None, tracking_uri: str | None) -> tuple[Path, str | None]:
    import mlflow

    version = None
    target = uri
    try:
        if uri.startswith("models:/"):
            # Resolve the registry reference ourselves, so the version is known and the
            # given tracking URI is also the registry (no global MLflow state).
            ref = uri[len("models:/"):].rstrip("/")
            client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            if "@" in ref:
                name, alias = ref.split("@", 1)
                version = str(client.get_model_version_by_alias(name, alias).version)
            elif "/" in ref and ref.rsplit("/", 1)[1].isdigit():
                name, version = ref.rsplit("/", 1)
            else:
                raise BundleError(f"{uri}: give models:/NAME@ALIAS or models:/NAME/VERSION")
            target = client.get_model_version_download_uri(name, version)
        if dst is not None:
            dst.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=target, dst_path=str(dst) if dst else None, tracking_uri=tracking_uri
        )
    except BundleError:
        raise
    except Exception as e:  # MLflow raises several types (MlflowException, OSError, ...)
        raise BundleError(f"could not download {uri} from MLflow: {e}") from e
    return Path(local), version


def _load_dir(directory: Path, source: str, version: str | None) -> Bundle:
    found = find_bundle_dir(directory)
    if found is None:
        if not (directory / "config.json").is_file():
            raise BundleError(f"{directory} holds neither {CONFIG_FILE} (a GRM bundle) nor config.json (a model)")
        cfg = BundleConfig()  # a bare Hugging Face directory: serve it with the defaults
        found = directory
    else:
        cfg = read_config(found)
        if not (found / "config.json").is_file():
            raise BundleError(f"{found}: has {CONFIG_FILE} but no config.json (the Hugging Face model is missing)")
    if version is not None:
        cfg = cfg.model_copy(update={"version": version})
    meta = found / (cfg.meta_rm or "meta_rm")
    if cfg.meta_rm and not meta.is_dir():
        raise BundleError(f"{found / CONFIG_FILE}: meta_rm={cfg.meta_rm!r} but {meta} is not a directory")
    return Bundle(str(found), cfg, source, meta if meta.is_dir() else None)


def resolve(source: str, *, cache_dir: Path | None = None, tracking_uri: str | None = None) -> Bundle:
    """Turn a model URI, directory or engine spec into a :class:`Bundle` on local disk."""
    if source.startswith(MLFLOW_SCHEMES):
        local, version = _mlflow_download(source, cache_dir, tracking_uri)
        return _load_dir(local, source, version)
    if source.startswith("file://"):
        source_path = Path(source[len("file://"):])
        if not source_path.is_dir():
            raise BundleError(f"{source}: not a directory")
        return _load_dir(source_path, source, None)
    if "://" in source:
        raise BundleError(
            f"{source}: unsupported scheme; use models:/, runs:/, file:// or a local path "
            f"(object stores go through KServe's storageUri, mounted at {KSERVE_MOUNT})"
        )
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_dir(path, source, None)
    return Bundle(source, BundleConfig(), source)  # an engine spec: tiny, demo, a .gguf file


def save_bundle(model: Any, tokenizer: Any, out: Path, config: BundleConfig | None = None,
                meta_rm_dir: Path | None = None) -> Path:
    """Write a GRM bundle: the model and tokenizer, ``spct.json``, and a copy of the meta RM."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    cfg = config or BundleConfig()
    if meta_rm_dir is not None:
        shutil.copytree(meta_rm_dir, out / "meta_rm", dirs_exist_ok=True)
        cfg = cfg.model_copy(update={"meta_rm": "meta_rm"})
    (out / CONFIG_FILE).write_text(cfg.model_dump_json(indent=2) + "\n")
    return out


def load_meta_rm(directory: Path, device: str = "cpu") -> Any:
    """The bundle's meta RM (spct.grm.meta, no training code), its problems as a :class:`BundleError`."""
    from spct.grm.meta import MetaRMError
    from spct.grm.meta import load_meta_rm as load

    try:
        return load(directory, device=device)
    except MetaRMError as e:
        raise BundleError(str(e)) from e
