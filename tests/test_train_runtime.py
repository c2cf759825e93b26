"""The DeepSpeed helper on CPU: a ZeRO-2 step equals a plain torch step; checkpoints; SIGKILL + --resume."""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from spct.config import load_profile  # noqa: E402
from spct.train import runtime  # noqa: E402
from spct.train.sft import collate, sft_loss  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _tiny_batch():
    from spct.data import load
    from spct.engine import load_model
    from spct.train.coldstart import coldstart_data

    model, tok = load_model("tiny", device="cpu")
    data = coldstart_data(tok, load("builtin:verifiable?n=2&seed=1").examples, perms=1, seed=0)
    return model.train(), tok, collate(data, tok.pad_token_id)


def test_zero2_step_matches_plain_torch_step():
    model, _, batch = _tiny_batch()
    plain = copy.deepcopy(model)
    cfg = load_profile("tiny", ["train.zero_stage=2", "train.grad_clip=0.5", "train.warmup_steps=0"]).train
    rt = runtime.initialize(model, cfg, lr=1e-3, micro_batch=2, grad_accum=1, device=torch.device("cpu"))
    assert type(rt.engine.optimizer).__name__ == "DeepSpeedZeroOptimizer"

    loss, _ = sft_loss(rt.engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"])
    rt.backward(loss)
    rt.step()

    opt = torch.optim.AdamW(plain.parameters(), lr=1e-3, weight_decay=0.0, foreach=False)
    ref_loss, _ = sft_loss(plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"])
    ref_loss.backward()
    torch.nn.utils.clip_grad_norm_(plain.parameters(), 0.5)
    opt.step()

    assert abs(loss.item() - ref_loss.item()) < 1e-6
    for (name, a), b in zip(rt.module.named_parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
    before = _tiny_batch()[0]
    assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), plain.parameters())), "the step changed nothing"


def test_forward_loss_projects_only_the_labelled_window_and_matches_the_full_loss():
    from spct.train.sft import IGNORE, forward_loss, loss_window

    assert loss_window(torch.tensor([[IGNORE, IGNORE, IGNORE, 8, 9], [IGNORE, IGNORE, 8, 9, IGNORE]])) == 4
    assert loss_window(torch.tensor([[IGNORE, 7], [IGNORE, IGNORE]])) == 2 and loss_window(torch.tensor([[IGNORE, IGNORE]])) == 1
    model, _, batch = _tiny_batch()
    keep = loss_window(batch["labels"])
    assert keep < batch["labels"].size(1) - 50  # the prompts' positions are skipped
    full = copy.deepcopy(model)
    loss, n = forward_loss(model, batch)
    ref, ref_n = sft_loss(full(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"])
    loss.backward()
    ref.backward()
    assert n == ref_n and abs(loss.item() - ref.item()) < 1e-5
    for (name, a), b in zip(model.named_parameters(), full.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-4), name


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    model, _, batch = _tiny_batch()
    cfg = load_profile("tiny", ["train.checkpoint_every=1", "train.keep_last=2"]).train
    rt = runtime.initialize(model, cfg, lr=1e-3, micro_batch=2, grad_accum=1, device=torch.device("cpu"))
    for step in range(1, 4):
        loss, _ = sft_loss(rt.engine(input_ids=batch["input_ids"]).logits, batch["labels"])
        rt.backward(loss)
        rt.step()
        runtime.maybe_checkpoint(rt, cfg, tmp_path, step, 3, {"data_position": step})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["step-00000002", "step-00000003"]  # no temporary directory left behind
    assert runtime.latest_checkpoint(tmp_path).name == "step-00000003"
    # A half-written checkpoint (no trainer_state.json) is never picked.
    (tmp_path / "step-00000009").mkdir()
    assert runtime.latest_checkpoint(tmp_path).name == "step-00000003"
    state = runtime.load_checkpoint(rt, tmp_path / "step-00000003")
    assert state["step"] == 3 and state["data_position"] == 3


SETS = [
    "coldstart.data=builtin:verifiable?n=6&seed=1", "coldstart.steps=6", "coldstart.batch_size=2",
    "coldstart.micro_batch_size=1", "coldstart.lr=3e-3", "train.checkpoint_every=2", "train.keep_last=2",
    "train.warmup_steps=3",
]  # fmt: skip


def _coldstart_cmd(out: Path, *extra: str) -> list[str]:
    args = [str(Path(sys.executable).parent / "spct"), "coldstart", "--config", "tiny", "--out", str(out), "--no-progress"]
    for s in SETS:
        args += ["--set", s]
    return args + list(extra)


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def test_sigkill_then_resume_ends_with_identical_weights(tmp_path):
    # Fresh single-process groups: not the rank/port variables earlier tests set in this process.
    dist_vars = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}
    env = {k: v for k, v in os.environ.items() if k not in dist_vars} | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    proc = subprocess.Popen(_coldstart_cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    deadline = time.monotonic() + 240
    while runtime.latest_checkpoint(killed / "checkpoints") is None:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "model").exists()
    first = runtime.latest_checkpoint(killed / "checkpoints").name
    assert first in ("step-00000002", "step-00000004")

    # The uninterrupted reference and the resumed run, side by side in fresh processes.
    reference = subprocess.Popen(_coldstart_cmd(full), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(_coldstart_cmd(killed, "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-2000:]
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["resumed_from"] == int(first.split("-")[1])
    a, b = _weights(full / "model"), _weights(killed / "model")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
