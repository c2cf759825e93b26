"""The stages end to end on the tiny model: RFT's trajectories train a meta RM that separates right
from wrong on held-out items; GRPO with LoRA moves only the adapters against the adapters-off
reference; and GRPO raising held-out accuracy measured by the evaluation harness.
Fixed seeds throughout; the assertions are on measured AUC and accuracy, not loss values, with
thresholds set under the smallest of three seeds' measurements (seed 0 by default, 1 and 2 with
``-m slow``)."""

import os

import pytest

pytest.importorskip("torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.config import load_profile  # noqa: E402
from spct.tracking import JsonlLogger, MultiLogger, read_jsonl_metrics  # noqa: E402

# The tiny profile trains on split=train: these inputs are never in its training data (checked below).
HELD_OUT = "builtin:verifiable?n=80&seed=0&categories=string_ops&modes=uppercase&split=heldout"


@pytest.fixture(scope="module")
def profile():
    # The tiny profile's training sections are sized for this test (configs/tiny.yaml).
    p = load_profile("tiny")
    assert "split=train" in p.grpo.data and "modes=uppercase" in p.grpo.data and p.grpo.steps == 80
    return p


# The stage-gain tests run at train seed 0 by default; seeds 1 and 2 (``-m slow``) are the other
# measured runs their thresholds were set from.
SEEDS = [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]


def seeded(profile, seed: int):
    return profile.model_copy(update={"train": profile.train.model_copy(update={"seed": seed})})


@pytest.fixture(scope="module")
def coldstarted_at(profile, tmp_path_factory):
    """The cold-started model for a train seed, trained once per module."""
    from spct.train.coldstart import run_coldstart

    done: dict[int, object] = {}

    def get(seed: int):
        if seed not in done:
            out = tmp_path_factory.mktemp(f"coldstart-{seed}")
            summary = run_coldstart(seeded(profile, seed), out, logger=MultiLogger(), progress=False)
            assert summary["steps"] == profile.coldstart.steps
            done[seed] = out / "model"
        return done[seed]

    return get


@pytest.fixture(scope="module")
def coldstarted(coldstarted_at):
    return coldstarted_at(0)


def heldout_accuracy(model_dir) -> dict:
    from spct.data import load
    from spct.engine import Engine, SamplingParams
    from spct.evaluate import EvalSettings, evaluate
    from spct.evaluate.heldout import check_heldout, load_training_sets, training_specs

    engine = Engine.load(str(model_dir), device="cpu")
    heldout = {"heldout": load(HELD_OUT).examples}
    check_heldout(heldout, load_training_sets(training_specs(load_profile("tiny"))))
    settings = EvalSettings(ks=[4], greedy=True, sampling=SamplingParams(max_new_tokens=128, token_budget=65536, seed=0))
    report = evaluate(engine, heldout, settings, progress=False)
    return report["datasets"]["heldout"]


# About 3 minutes: 80 GRPO steps of 16 items x 4 critiques, two evaluations of 80 held-out items.
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", SEEDS)
def test_grpo_raises_heldout_accuracy(profile, coldstarted_at, seed, tmp_path):
    from spct.train import grpo

    start = coldstarted_at(seed)
    before = heldout_accuracy(start)
    summary = grpo.train(seeded(profile, seed), tmp_path, model_spec=str(start), logger=JsonlLogger(tmp_path / "m.jsonl"),
                         progress=False)  # fmt: skip
    after = heldout_accuracy(tmp_path / "model")

    steps = [r["metrics"] for r in read_jsonl_metrics(tmp_path / "m.jsonl")]
    assert len(steps) == summary["steps"] == 80
    for key in ("reward", "accuracy", "parse_rate", "kl", "clip_frac", "mean_length", "samples_per_s", "tokens_per_s"):
        assert key in steps[0]
    assert steps[-1]["kl"] > 0  # the policy moved away from the reference
    # Unseen items (split=heldout) through the evaluation harness: greedy in both orders, official
    # rule (a tie or no parse is a miss). Measured 2026-11-30 at train seeds 0 / 1 / 2 (seeds 1
    # and 2: pytest -m slow tests/test_train_stages.py): greedy 0.706 -> 0.838, 0.581 -> 0.806, 0.463 -> 0.800
    # (gains +0.131 / +0.225 / +0.338); voting@4 0.788 -> 0.875, 0.500 -> 0.838, 0.638 -> 0.750
    # (+0.088 / +0.338 / +0.113); after GRPO above the chance / first-slot / last-slot baselines
    # (0.50 each) every time. The thresholds keep a margin under the smallest of the three.
    print(f"held-out before {before} after {after}")
    assert after["voting@4"] >= before["voting@4"] + 0.04, f"voting@4 {before['voting@4']:.3f} -> {after['voting@4']:.3f}"
    assert after["greedy"] >= before["greedy"] + 0.06, f"greedy {before['greedy']:.3f} -> {after['greedy']:.3f}"
    assert after["greedy"] >= 0.75, f"greedy after GRPO {after['greedy']:.3f}"
    # Above every POSITION baseline. Not above the surface ones: the tiny profile's uppercase items are
    # solved by a classifier of the answers alone (response-only 100%), so this test shows that GRPO
    # trains, not that the tiny model checks answers; the tiny profile moves to reasoning-gym tasks
    # with issue 19. The report must show that baseline beside the figure.
    g = after["results"]["greedy"]
    assert g["ci95"][0] > max(g["baselines"][b] for b in ("chance", "first_slot", "last_slot")), g
    assert {"response_only", "longest", "shortest"} <= set(g["baselines"]), g["baselines"]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", SEEDS)
def test_rft_then_meta_rm_separates_right_from_wrong(profile, coldstarted_at, seed, tmp_path):
    import json

    from spct.train import metarm, rft

    coldstarted, profile = coldstarted_at(seed), seeded(profile, seed)
    summary = rft.run(profile, tmp_path / "rft", model_spec=str(coldstarted), logger=MultiLogger(), progress=False)
    counts = json.loads((tmp_path / "rft" / "counts.json").read_text())
    assert counts == summary["counts"] and counts["items"] == 150
    assert sum(counts[r] for r in rft.REASONS) == summary["sampled"]
    assert (tmp_path / "rft" / "model" / "config.json").is_file()

    m = metarm.train(profile, tmp_path / "metarm", model_spec=str(coldstarted), samples=tmp_path / "rft" / "samples.jsonl",
                     logger=MultiLogger(), progress=False)  # fmt: skip
    print(f"meta RM held-out AUC {m['heldout_auc']:.3f} accuracy {m.get('heldout_accuracy')}")
    assert m["train_right_share"] == 0.5  # balanced
    # Measured 0.697 / 0.778 / 0.627 at seeds 0 / 1 / 2 (2026-12-04, the shared-prefix sampler); 0.791 / 0.826 /
    # 0.752 before it (2026-11-30). Greedy output is token-identical between the two samplers; sampled draws
    # differ (finished rows leave the batch), and these RFT samples are the meta RM's data. Whether the lower
    # figures are the draw or the sampler is not settled (three seeds, SE ~0.04 each): docs/training.md.
    assert m["heldout_auc"] > 0.6, m

    loaded = metarm.MetaRewardModel.load(tmp_path / "metarm" / "model")
    trajs = [t for t in rft.read_trajectories(tmp_path / "rft" / "samples.jsonl") if not t.hinted][:6]
    scores = loaded.rate([t.prompt for t in trajs], [t.text for t in trajs])
    assert len(scores) == 6 and all(0.0 <= s <= 1.0 for s in scores)


def test_grpo_with_lora_updates_only_adapters_against_the_disabled_adapter_reference(profile, coldstarted, tmp_path):
    """Two LoRA steps: the reference is the same model with adapters off (no copy); the policy moves."""
    from safetensors.torch import load_file

    from spct.train import grpo

    p = profile.model_copy(update={
        "lora": profile.lora.model_copy(update={"enabled": True, "r": 4}),
        "grpo": profile.grpo.model_copy(update={"steps": 2, "lr": 1e-2, "batch_size": 4}),
    })  # fmt: skip
    grpo.train(p, tmp_path, model_spec=str(coldstarted), logger=JsonlLogger(tmp_path / "m.jsonl"), progress=False)
    steps = [r["metrics"] for r in read_jsonl_metrics(tmp_path / "m.jsonl")]
    assert steps[0]["kl"] == 0 and steps[1]["kl"] > 0  # identical to the reference until the first update
    for key in ("reward", "accuracy", "parse_rate", "clip_frac", "mean_length", "samples_per_s", "tokens_per_s"):
        assert key in steps[1]
    before, after = load_file(coldstarted / "model.safetensors"), load_file(tmp_path / "model" / "model.safetensors")
    assert before.keys() == after.keys()  # adapters merged back into a plain model
    changed = [k for k in before if not (before[k] == after[k]).all()]
    assert changed and all("proj" in k for k in changed)  # only LoRA-targeted linear layers moved
