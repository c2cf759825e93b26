"""Profiles: one typed configuration, three sets of numbers (tiny, demo, a100).

A profile is YAML in ``configs/``; every field has a default that works, so a
profile only names what differs. Precedence, lowest first: field defaults, the
profile file, ``key.sub=value`` overrides from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spct.engine.sampler import SamplingParams
from spct.registry.gate import GatePolicy
from spct.train.config import ColdStartConfig, GRPOConfig, LoraSection, MetaRMConfig, RFTConfig, TrainConfig

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
    """A profile or override that cannot be used; the message names the file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    spec: str = Field("tiny", description="tiny | demo | smollm2-135m-instruct | gemma3-270m | a local HF dir | a .gguf file")
    dtype: str = Field("float32", description="float32 | bfloat16 | float16 (bf16 on GPU pods)")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")


_DEFAULT = SamplingParams()  # the one place sampling defaults are declared (spct.engine.sampler)


class SamplingConfig(_Section):
    temperature: float = Field(_DEFAULT.temperature, ge=0.0, description="the paper samples critiques at 0.5; 0 = greedy")
    top_p: float = Field(_DEFAULT.top_p, gt=0.0, le=1.0)
    max_new_tokens: int = Field(_DEFAULT.max_new_tokens, ge=1)
    token_budget: int = Field(_DEFAULT.token_budget, ge=64, description="padded tokens (prompt + new) per generate() micro-batch")
    seed: int = _DEFAULT.seed

    def params(self, section: Any = None, *, seed_offset: int = 0, min_new_tokens: int = 0, **overrides: Any) -> SamplingParams:
        """The :class:`SamplingParams` every caller builds from a profile: these settings, a training
        stage section's temperature/max_new_tokens/token_budget on top, then explicit ``overrides``
        (``temperature=0`` for greedy); ``seed_offset`` moves the seed (a new draw per GRPO step)."""
        temperature, max_new, budget = self.temperature, self.max_new_tokens, self.token_budget
        if section is not None:
            temperature = temperature if section.temperature is None else section.temperature
            max_new = section.max_new_tokens or max_new
            budget = section.token_budget or budget
        fields: dict[str, Any] = {
            "temperature": temperature, "top_p": self.top_p, "max_new_tokens": max_new,
            "seed": self.seed + seed_offset, "token_budget": budget, **overrides,
        }  # fmt: skip
        fields["min_new_tokens"] = min(fields.get("min_new_tokens", min_new_tokens), fields["max_new_tokens"])
        return SamplingParams(**fields)


class EvalConfig(_Section):
    data: list[str] = Field(default_factory=lambda: ["builtin:verifiable?split=heldout"], description="paths or builtin:NAME")
    ks: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    greedy: bool = True
    limit: int | None = Field(None, ge=1, description="items per dataset (None = all)")
    k_meta: int | None = Field(None, ge=1, description="MetaRM@k keeps this many of k (default k/2)")
    meta_rm: str | None = None

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 for k in v):
            raise ValueError("ks must be a non-empty list of positive integers")
        return sorted(set(v))


class Profile(_Section):
    name: str = "tiny"
    model: ModelConfig = Field(default_factory=ModelConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    # Training stages (spct.train); every section has working defaults.
    train: TrainConfig = Field(default_factory=TrainConfig)
    lora: LoraSection = Field(default_factory=LoraSection)
    coldstart: ColdStartConfig = Field(default_factory=ColdStartConfig)
    rft: RFTConfig = Field(default_factory=RFTConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    metarm: MetaRMConfig = Field(default_factory=MetaRMConfig)
    # The promotion gate's thresholds for runs of this profile (`spct pipeline run`, `spct promote
    # --profile`); the defaults are declared once, in spct.registry.gate.GatePolicy.
    gate: GatePolicy = Field(default_factory=GatePolicy)


def profile_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.exists():
        if not p.is_file():
            raise ConfigError(f"profile file {p} does not exist")
        return p
    for d in filter(None, [os.environ.get("SPCT_CONFIG_DIR"), str(REPO_CONFIGS)]):
        cand = Path(d) / f"{name_or_path}.yaml"
        if cand.is_file():
            return cand
    raise ConfigError(f"no profile named {name_or_path!r} (looked in $SPCT_CONFIG_DIR and {REPO_CONFIGS})")


def _coerce(text: str) -> Any:
    # YAML's scalar rules: 3 -> int, 0.5 -> float, true -> bool, [1,2] -> list, null -> None.
    return yaml.safe_load(text)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["sampling.temperature=0.7", "eval.ks=[1,4]"]`` applied onto a nested dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = _coerce(value)
    return data


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, section by section (lists and scalars replace, mappings merge).

    >>> merge({"grpo": {"steps": 8, "lr": 1e-4}, "name": "demo"}, {"grpo": {"steps": 40}, "name": "x"})
    {'grpo': {'steps': 40, 'lr': 0.0001}, 'name': 'x'}
    """
    out = dict(base)
    for k, v in top.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_profile(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A profile file as a dict; ``base: NAME`` reads NAME first and puts this file's sections over it."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: profile bases form a cycle ({' -> '.join(p.name for p in (*seen, path))})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile must be a mapping of sections")
    if (base := data.pop("base", None)) is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{path}: base must be a profile name or path, got {base!r}")
        data = merge(_read_profile(profile_path(base), (*seen, path.resolve())), data)
    return data


def load_profile(name_or_path: str = "tiny", overrides: list[str] | None = None) -> Profile:
    path = profile_path(name_or_path)
    data = apply_overrides(_read_profile(path), list(overrides or []))
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{path}: {problems}") from e
