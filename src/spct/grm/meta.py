"""The meta RM at inference: a scalar head on a causal-LM backbone that rates how trustworthy a
critique is (MetaRM@k keeps the samples it rates highest), and its loader.

Training lives in :mod:`spct.train.metarm`; serving, the registry and evaluation load a meta RM
from here without importing training code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT = "spct-metarm-v1"


class MetaRewardModel(nn.Module):
    """``backbone`` (a transformers base model) -> hidden state of the last real token -> Linear -> logit."""

    def __init__(self, backbone: Any, tokenizer: Any, max_length: int = 2048) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.max_length = max_length
        hidden = backbone.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=1.0 / hidden**0.5)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_causal_lm(cls, lm: Any, tokenizer: Any, max_length: int = 2048) -> "MetaRewardModel":
        return cls(lm.base_model, tokenizer, max_length)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask: (B, T) right-padded -> (B,) logits."""
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state  # (B, T, H)
        last = attention_mask.sum(dim=1) - 1  # (B,) index of the last real token
        pooled = h[torch.arange(h.size(0), device=h.device), last]  # (B, H)
        return self.head(pooled.to(self.head.weight.dtype)).squeeze(-1)

    def encode(self, prompt: str, critique: str) -> list[int]:
        return encode_pair(self.tokenizer, prompt, critique, self.max_length)

    @torch.no_grad()
    def rate(self, prompts: Sequence[str], critiques: Sequence[str], batch_size: int = 8) -> list[float]:
        """P(right) for each (judge prompt, critique) pair: higher = more trustworthy."""
        if len(prompts) != len(critiques):
            raise ValueError(f"{len(prompts)} prompts for {len(critiques)} critiques")
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        out: list[float] = []
        for i in range(0, len(prompts), batch_size):
            ids, mask = pad_right([self.encode(p, c) for p, c in zip(prompts[i : i + batch_size], critiques[i : i + batch_size])], self.pad_id)
            out += torch.sigmoid(self(ids.to(device), mask.to(device)).float()).tolist()
        self.train(was_training)
        return out

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def save(self, path: str | Path, backbone: Any = None) -> Path:
        """``backbone/`` (a Hugging Face model + tokenizer), ``head.safetensors``, ``metarm.json``.

        ``backbone`` replaces ``self.backbone`` in the file: the trainer passes its LoRA-merged copy.
        """
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (self.backbone if backbone is None else backbone).save_pretrained(path / "backbone")
        self.tokenizer.save_pretrained(path / "backbone")
        save_file({k: v.detach().float().cpu().contiguous() for k, v in self.head.state_dict().items()}, path / "head.safetensors")
        (path / "metarm.json").write_text(json.dumps({"format": FORMAT, "max_length": self.max_length}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", dtype: str = "float32") -> "MetaRewardModel":
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        info_file = path / "metarm.json"
        if not info_file.is_file():
            raise FileNotFoundError(f"{path} is not a meta RM directory (no metarm.json)")
        info = json.loads(info_file.read_text())
        if info.get("format") != FORMAT:
            raise ValueError(f"{info_file}: format {info.get('format')!r}, expected {FORMAT!r}")
        backbone = AutoModel.from_pretrained(path / "backbone", dtype=getattr(torch, dtype), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path / "backbone", local_files_only=True)
        model = cls(backbone, tokenizer, int(info["max_length"]))
        model.head.load_state_dict(load_file(path / "head.safetensors"))
        return model.to(device).eval()


def encode_pair(tokenizer: Any, prompt: str, critique: str, max_length: int) -> list[int]:
    """prompt + critique tokens; beyond ``max_length`` the prompt is cut from the left (the critique matters most)."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c = tokenizer(critique, add_special_tokens=False)["input_ids"][:max_length]
    keep = max_length - len(c)
    return (p[-keep:] if keep > 0 else []) + c


def pad_right(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids and attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask




class MetaRMError(ValueError):
    """A meta RM folder that cannot be used."""


def load_meta_rm(directory: str | Path, device: str = "cpu") -> MetaRewardModel:
    """The meta RM saved in ``directory`` by the meta RM stage, with errors that name the folder."""
    path = Path(directory)
    if not path.is_dir():
        raise MetaRMError(f"{path}: no such meta RM folder")
    try:
        return MetaRewardModel.load(path, device=device)
    except (OSError, ValueError, KeyError) as e:
        raise MetaRMError(f"{path}: not a loadable meta RM: {e}") from e
