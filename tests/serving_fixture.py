"""A real ``spct serve`` process on loopback for the OpenAI, auth and integration tests."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

NAME = "spct-grm"
TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_bundle(root: Path, model: Path | None = None, **cfg: Any) -> Path:
    """A GRM bundle of ``model`` (default: the tiny model) with short generations."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from spct.engine.models import tiny_dir

    out = root / "bundle"
    shutil.copytree(model or tiny_dir(), out)
    conf = {"name": NAME, "version": "1", "k": 2, "temperature": 0.5, "max_new_tokens": 8, **cfg}
    (out / "spct.json").write_text(json.dumps(conf))
    return out


class Server:
    def __init__(self, bundle: Path, log: Path, *args: str, token: str | None = TOKEN):
        self.port = free_port()
        self.log_path = log
        self._log = open(log, "wb")
        env = {k: v for k, v in os.environ.items() if k not in ("SPCT_API_TOKEN", "SPCT_HOST")}
        env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        if token:
            env["SPCT_API_TOKEN"] = token
        self.token = token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spct.serving", "serve", "--model", str(bundle), "--port", str(self.port),
             "--name", NAME, "--device", "cpu", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def wait_ready(self, timeout: float = 240) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v2/models/{NAME}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready within {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def fixed_verdict_model(steps: int = 40, seed: int = 0) -> Path:
    """:func:`train_fixed_verdict`, trained once and cached beside the tiny model."""
    from spct.engine.models import _save_atomically, cache_root

    return _save_atomically(cache_root() / f"test-fixed-verdict-s{seed}-n{steps}-v1",
                            lambda tmp: train_fixed_verdict(tmp, steps, seed))


def train_fixed_verdict(out: Path, steps: int = 40, seed: int = 0) -> Path:
    """The tiny model taught, in a few seconds, to answer every one-response judge prompt with
    a fixed critique ending in ``\\boxed{7}``: a real GRM whose verdicts parse, for the tests
    of what adapters do with scores (the untrained tiny model never writes the format)."""
    import torch

    from spct.engine import load_model
    from spct.grm.prompt import render_judge, special_strings
    from spct.types import Message

    torch.manual_seed(seed)
    model, tok = load_model("tiny", device="cpu")
    target = "Specific Criteria:\n- Correctness (100%)\nAnalysis: fine.\nScores: \\boxed{7}"
    rng = random.Random(seed)
    words = ["apple", "river", "seven", "blue", "code", "moon", "tree", "sum", "why", "list"]
    rows = []
    for _ in range(32):
        q = " ".join(rng.choices(words, k=rng.randint(2, 8))) + "?"
        a = " ".join(rng.choices(words, k=rng.randint(1, 6)))
        prompt = render_judge(tok, [Message(role="user", content=q)], [a], specials=special_strings(tok))
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        t_ids = tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append((p_ids, t_ids))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = [rows[(step * 8 + j) % len(rows)] for j in range(8)]
        width = max(len(p) + len(t) for p, t in batch)
        ids = torch.full((8, width), tok.pad_token_id)
        labels = torch.full((8, width), -100)
        mask = torch.zeros((8, width), dtype=torch.long)
        for i, (p, t) in enumerate(batch):
            seq = p + t
            ids[i, : len(seq)] = torch.tensor(seq)
            labels[i, len(p) : len(seq)] = torch.tensor(t)
            mask[i, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
