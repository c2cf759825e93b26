"""Curation: dedup, filters, split, balance, manifest, atomic output, and the CLI."""

import hashlib
import importlib
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spct.data import CurateConfig, DataError, curate, generate_verifiable, load, read_curated
from spct.data.curate import assign_splits, balance_positions, prompt_key
from spct.types import Example, user

# The package re-exports the function ``curate``, which shadows the module attribute.
curate_mod = importlib.import_module("spct.data.curate")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _ex(i, prompt, responses, best=0, **kw):
    return Example(id=f"t/{i}", source="t", messages=[user(prompt)], responses=responses, best=best, **kw)


def _write(tmp_path, examples, name="in.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(e.to_record()) for e in examples) + "\n")
    return p


LONG = " ".join(f"word{i}" for i in range(60))


def test_dedup_near_dup_and_identical(tmp_path):
    exs = [
        _ex(0, "Tell me a story.", ["Once upon a time.", "No."]),
        _ex(1, "Tell me a story.\r\n", ["No.  ", "Once upon a time."], best=1),  # exact dup after normalisation
        _ex(2, "Explain " + LONG, [LONG + " end", "short"]),
        _ex(3, "Explain " + LONG, [LONG + " fin", "short"]),  # near dup of 2
        _ex(4, "Say hi", ["hi", "hi \n"]),  # identical responses after normalisation
        _ex(5, "Say bye", ["bye", "ciao"]),
    ]
    m = curate([_write(tmp_path, exs)], tmp_path / "out", CurateConfig(eval_fraction=0.0))
    assert m.drops == {"identical_responses": 1, "too_long": 0, "exact_duplicate": 1, "near_duplicate": 1}
    kept = read_curated(tmp_path / "out", "train")
    assert sorted(e.id for e in kept) == ["t/0", "t/2", "t/5"]
    assert kept[0].messages[0].content == "Tell me a story."
    # The length filter, with a whitespace estimate when no tokenizer is given.
    m2 = curate([_write(tmp_path, exs)], tmp_path / "out2", CurateConfig(eval_fraction=0.0, max_tokens=20))
    assert m2.drops["too_long"] == 2


def test_variants_of_one_item_are_not_duplicates(tmp_path):
    # JudgeBench pairs on one question share the prompt; none is a duplicate of another.
    # (One example per pair: the evaluation's rotations supply both orders.)
    m = curate([DATA / "judgebench" / "claude-3-5-sonnet-20240620.jsonl"], tmp_path / "out", CurateConfig(max_tokens=None))
    assert m.drops["exact_duplicate"] == 0 and m.drops["near_duplicate"] == 0
    assert m.drops["identical_responses"] == 1  # the one upstream pair with response_A == response_B
    assert m.counts["train"]["total"] + m.counts["eval"]["total"] == 270 - 1


def test_split_deterministic_no_leakage_and_balanced(tmp_path):
    src = "builtin:verifiable?n=400&responses=3"
    cfg = CurateConfig(eval_fraction=0.25, seed=7)
    m1 = curate([src], tmp_path / "a", cfg)
    m2 = curate([src], tmp_path / "b", cfg)
    assert m1.files["train.parquet"]["sha256"] == m2.files["train.parquet"]["sha256"]
    train, ev = read_curated(tmp_path / "a", "train"), read_curated(tmp_path / "a", "eval")
    assert 0.15 < len(ev) / (len(ev) + len(train)) < 0.35
    assert not {prompt_key(e) for e in train} & {prompt_key(e) for e in ev}
    for split in (train, ev):
        counts = Counter(e.best for e in split)
        assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == 3
        for e in split:  # labels and ground truth follow the moved responses
            assert e.labels[e.best] == 1.0 and e.meta["response_meta"][e.best]["correct"]
            assert e.meta["answer"] in e.responses[e.best]
    other = curate([src], tmp_path / "c", CurateConfig(eval_fraction=0.25, seed=8))
    assert other.files["eval.parquet"]["sha256"] != m1.files["eval.parquet"]["sha256"]


def test_near_duplicate_prompts_share_a_split():
    base = "Please summarise the following paragraph about the history of the printing press " + LONG
    exs = [_ex(i, base + ("" if i % 2 else " indeed"), [f"a{i}", f"b{i}"]) for i in range(40)]
    splits = assign_splits(exs, CurateConfig(eval_fraction=0.5))
    assert min(len(splits["train"]), len(splits["eval"])) == 0


def test_balance_keeps_ranking_consistent():
    exs = [_ex(i, f"q{i}", ["a", "b", "c"], best=0, ranking=[0, 2, 1], labels=[1.0, 0.0, 0.5]) for i in range(9)]
    out = balance_positions(exs)
    assert Counter(e.best for e in out) == {0: 3, 1: 3, 2: 3}
    for e in out:
        assert e.responses[e.best] == "a" and e.ranking[0] == e.best
        assert [e.responses[k] for k in e.ranking] == ["a", "c", "b"]
        assert e.labels[e.responses.index("c")] == 0.5


def test_manifest_matches_files_and_reads_back(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": 5, "rejected": "b"}\n')
    out = tmp_path / "out"
    m = curate([DATA / "rmb-sample", bad], out, CurateConfig(skip_bad=True))
    disk = json.loads((out / "manifest.json").read_text())
    assert disk == json.loads(m.model_dump_json())
    for name, info in disk["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == info["sha256"]
        assert len(read_curated(out / name)) == info["rows"]
    assert disk["skipped"]["count"] == 1 and disk["skipped"]["records"][0]["field"] == "chosen"
    assert disk["config"]["skip_bad"] is True and disk["spct_version"]
    assert set(disk["counts"]["train"]["by_source"]) == {"rmb", "preference"}
    # Curated output is itself loadable, with meta intact.
    back = load(out)
    assert back.examples and all(e.source in ("rmb", "preference") for e in back.examples)
    assert any(isinstance(e.meta.get("category_path"), str) for e in back.examples)


def test_atomic_failure_keeps_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    curate(["builtin:verifiable?n=20"], out, CurateConfig())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = curate_mod._write_parquet
    calls = []

    def failing(examples, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(examples, path)

    monkeypatch.setattr(curate_mod, "_write_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        curate(["builtin:verifiable?n=50"], out, CurateConfig())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp dir left behind


def test_refuses_to_replace_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="refusing"):
        curate(["builtin:verifiable?n=5"], tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_cli_curate(tmp_path):
    from spct.cli import app

    runner = CliRunner()
    out = tmp_path / "cur"
    r = runner.invoke(app, ["curate", "--data", "builtin:verifiable?n=40", "--data", str(DATA / "rmb-sample"), "--out", str(out), "--eval-fraction", "0.2", "--seed", "3", "--limit", "30"])
    assert r.exit_code == 0, r.output
    assert "rmb" in r.output and "verifiable" in r.output and str(out) in r.output.replace("\n", "")
    m = json.loads((out / "manifest.json").read_text())
    assert [s["used"] for s in m["sources"]] == [30, 30] and m["config"]["seed"] == 3

    # HH-RLHF's 4 empty final replies are legitimate items now (a judge should rank them last);
    # a structurally broken record still stops the run, naming the line, unless --skip-bad.
    r = runner.invoke(app, ["curate", "--data", str(DATA / "hh-rlhf"), "--out", str(tmp_path / "hh"), "--limit", "100"])
    assert r.exit_code == 0, r.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"\n')
    r = runner.invoke(app, ["curate", "--data", str(broken), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "line 2" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "b").exists()
    r = runner.invoke(app, ["curate", "--data", str(broken), "--out", str(tmp_path / "b"), "--skip-bad"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["skipped"]["count"] == 1


def test_verifiable_survives_curation(tmp_path):
    exs = generate_verifiable(60, seed=2)
    m = curate([_write(tmp_path, exs)], tmp_path / "o", CurateConfig(eval_fraction=0.0))
    assert m.counts["train"]["total"] + sum(m.drops.values()) == 60
