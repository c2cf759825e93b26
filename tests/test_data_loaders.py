"""Loaders on the real shared data, broken files, --skip-bad and format detection."""

import gzip
import json
from pathlib import Path

import pytest

from spct.data import (
    DataError,
    detect_format,
    load,
    load_hh_rlhf,
    load_judgebench,
    load_ppe_correctness,
    load_ppe_preference,
    load_preference,
    load_rewardbench,
    load_rewardbench2,
    load_rm_bench,
    load_rmb,
)
from spct.types import Example, user

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIX = Path(__file__).parent / "fixtures"


def test_real_data_present():
    for sub in ("rm-bench", "judgebench", "hh-rlhf", "rmb-sample"):
        assert (DATA / sub).is_dir(), f"missing real data folder {DATA / sub}"


def test_rm_bench_all_style_pairs():
    res = load_rm_bench(DATA / "rm-bench")
    assert len(res.examples) == 798 * 9 == 7182
    assert res.skipped.count == 0
    by_prompt = {}
    for ex in res.examples:
        by_prompt.setdefault(ex.meta["group"], []).append(ex)
    assert len(by_prompt) == 798
    cells = {(e.meta["chosen_style"], e.meta["rejected_style"]) for e in next(iter(by_prompt.values()))}
    assert cells == {(i, j) for i in range(3) for j in range(3)}
    assert {e.category for e in res.examples} == {"chat", "code", "safety"}
    assert {e.meta["subset"] for e in res.examples if e.category == "safety"} == {"safety-refuse", "safety-response"}
    positions = [e.best for e in res.examples]
    assert 0.4 < sum(positions) / len(positions) < 0.6  # chosen is not always first
    raw = json.loads((DATA / "rm-bench" / "chat.json").read_text())[0]
    ex = next(e for e in res.examples if e.meta["prompt_id"] == raw["id"] and e.category == "chat" and e.meta["chosen_style"] == 1 and e.meta["rejected_style"] == 2)
    assert ex.responses[ex.best] == raw["chosen"][1]
    assert ex.responses[1 - ex.best] == raw["rejected"][2]
    assert ex.meta["chosen_style_name"] == "detailed_plain" and ex.meta["rejected_style_name"] == "detailed_markdown"
    assert len({e.id for e in res.examples}) == 7182


def test_judgebench_one_example_per_pair():
    # The harness judges every rotation (both orders), so the loader no longer duplicates pairs.
    res = load_judgebench(DATA / "judgebench")
    assert len(res.examples) == 620 and res.skipped.count == 0
    rows = [json.loads(line) for f in sorted((DATA / "judgebench").glob("*.jsonl")) for line in f.open()]
    by_id = {e.meta["pair_id"]: e for e in res.examples}
    assert len(by_id) == 620
    for row in rows:
        e = by_id[row["pair_id"]]
        assert e.responses == [row["response_A"], row["response_B"]]  # file order A, B
        assert e.best == (0 if row["label"] == "A>B" else 1) and e.meta["label"] == row["label"]
        assert e.meta["group"] == f"judgebench/{row['pair_id']}" and e.id == f"judgebench/{row['pair_id']}"
    assert {e.category for e in res.examples} == {"knowledge", "reasoning", "math", "coding"}
    assert {e.meta["response_model"] for e in res.examples} == {"gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620"}


def test_hh_rlhf_real_file():
    path = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    # The upstream file holds 4 pairs whose chosen reply is empty (saying nothing was preferred):
    # they are items to judge, so strict loading keeps all 2312.
    res = load_hh_rlhf(path)
    assert len(res.examples) == 2312 and res.skipped.count == 0
    empty = [e for e in res.examples if not e.responses[e.best].strip()]
    assert [e.meta["line"] for e in empty] == [87, 517, 926, 1104]
    rows = [json.loads(line) for line in gzip.open(path, "rt")]
    ex = res.examples[0]
    first = rows[0]
    assert ex.messages[0].role == "user" and ex.messages[-1].role == "user"
    assert first["chosen"].rstrip().endswith(ex.responses[ex.best])
    assert first["rejected"].rstrip().endswith(ex.responses[1 - ex.best])
    assert all(e.category == "harmlessness" for e in res.examples)


def test_rmb_folder_and_file():
    res = load_rmb(DATA / "rmb-sample")
    pair = json.loads((DATA / "rmb-sample" / "pairwise-chat-casual.json").read_text())
    bon = json.loads((DATA / "rmb-sample" / "bon-chat-casual.json").read_text())
    assert len(res.examples) == len(pair) + len(bon)
    kinds = [e.meta["kind"] for e in res.examples]
    assert kinds.count("pairwise") == len(pair) and kinds.count("bon") == len(bon)
    b = next(e for e in res.examples if e.meta["kind"] == "bon" and e.meta["uid"] == str(bon[0]["bon_uid"]))
    assert b.n == 1 + len(bon[0]["loser_list"])
    assert b.responses[b.best] == bon[0]["bon_best"]["answer"]
    assert b.category == "Casual Conversation" and b.meta["goal"] == "helpfulness"
    assert b.meta["category_path"] == "BoN_set/Helpfulness/Chat/Casual Conversation"
    assert len({e.best for e in res.examples if e.meta["kind"] == "bon"}) > 1  # best is not always in one place
    assert len(load_rmb(DATA / "rmb-sample" / "bon-chat-casual.json").examples) == len(bon)


@pytest.mark.parametrize(
    ("sub", "fmt"),
    [("rm-bench/chat.json", "rm-bench"), ("judgebench", "judgebench"), ("rmb-sample", "rmb")],
)
def test_load_detects_format(sub, fmt):
    res = load(DATA / sub)
    assert res.examples and {e.source for e in res.examples} == {fmt}


def test_load_unknown_format(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"question": "q", "answer": "a"}\n')
    with pytest.raises(DataError, match="tried rewardbench-2, rm-bench, judgebench, rmb, rewardbench, ppe-preference, ppe-correctness, hh-rlhf, spct, preference"):
        load(p)
    with pytest.raises(DataError, match="unknown format 'nope'"):
        load(p, format="nope")


# ---- broken inputs -----------------------------------------------------------------


def _rm_item(i):
    return {"id": i, "subset": "alpacaeval", "prompt": f"p{i}", "chosen": ["a", "b", "c"], "rejected": ["x", "y", "z"]}


def test_truncated_json_array(tmp_path):
    p = tmp_path / "chat.json"
    text = json.dumps([_rm_item(i) for i in range(3)])
    p.write_text(text[: len(text) - 20])
    with pytest.raises(DataError) as err:
        load_rm_bench(p)
    assert err.value.path == str(p) and err.value.record == 2 and "invalid JSON" in str(err.value)
    res = load_rm_bench(p, skip_bad=True)
    assert len(res.examples) == 2 * 9 and res.skipped.count == 1


def test_wrong_types_and_missing_fields(tmp_path):
    items = [_rm_item(i) for i in range(4)]
    items[1]["chosen"] = ["a", "b"]
    del items[2]["prompt"]
    items[3]["rejected"] = ["x", 3, "z"]
    items.append({**_rm_item(4), "rejected": ["x", "", "  "]})  # empty answers are items, not damage
    p = tmp_path / "chat.json"
    p.write_text(json.dumps(items))
    with pytest.raises(DataError) as err:
        load(p)
    assert str(err.value) == f"{p}: record 1: field 'chosen': expected a list of 3 strings, got a list of 2"
    res = load(p, skip_bad=True)
    assert len(res.examples) == 18
    assert [(e.record, e.field) for e in res.skipped.records] == [(1, "chosen"), (2, "prompt"), (3, "rejected")]
    assert "item 1 of type int" in res.skipped.records[2].reason
    assert {r for e in res.examples if e.meta["prompt_id"] == 4 for r in e.responses} >= {"", "  "}


def test_judgebench_bad_label_and_empty_response(tmp_path):
    good = {"pair_id": "p", "source": "livebench-math", "question": "q", "response_model": "m", "response_A": "a", "response_B": "b", "label": "A>B"}
    lines = [good, {**good, "pair_id": "q", "label": "A=B"}, {**good, "pair_id": "r", "response_B": "  "}, {**good, "pair_id": "s", "response_A": None}]
    p = tmp_path / "jb.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"pair_id\": \"trunc\n")
    with pytest.raises(DataError) as err:
        load_judgebench(p)
    assert (err.value.record, err.value.field) == (2, "label") and "line 2" in str(err.value) and "'A=B'" in str(err.value)
    res = load(p, skip_bad=True)
    # The whitespace-only response is an item (a judge should rank it last); a null one is damage.
    assert [e.id for e in res.examples] == ["judgebench/p", "judgebench/r"]
    assert res.examples[1].responses == ["a", "  "]
    assert [(e.record, e.field) for e in res.skipped.records] == [(2, "label"), (4, "response_A"), (5, None)]
    assert "missing" in res.skipped.records[1].reason and "invalid JSON" in res.skipped.records[2].reason


def test_hh_rlhf_bad_records(tmp_path):
    ok = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}
    bad = [
        {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: bye\n\nAssistant: b"},  # no common prefix
        {"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: ho"},  # no assistant turn
        {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": 7},  # not a dialogue
    ]
    empty = {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant:   "}  # an item
    p = tmp_path / "hh.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in [ok, *bad, empty]))
    res = load(p, skip_bad=True)
    assert len(res.examples) == 2 and res.skipped.count == 3
    assert [(e.record, e.field) for e in res.skipped.records] == [(2, "rejected"), (3, "rejected"), (4, "rejected")]
    assert sorted(res.examples[1].responses) == ["", "a"]
    ex = res.examples[0]
    assert sorted(ex.responses) == ["go away", "hello"] and ex.responses[ex.best] == "hello"
    with pytest.raises(DataError, match="line 2"):
        load_hh_rlhf(p)


def test_trl_preference_formats(tmp_path):
    rows = [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go."}]},
        {"chosen": [{"role": "user", "content": "Hey"}, {"role": "assistant", "content": "Hi there"}], "rejected": [{"role": "user", "content": "Hey"}, {"role": "assistant", "content": "No"}]},
    ]
    p = tmp_path / "pref.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    res = load(p)
    assert [e.source for e in res.examples] == ["preference"] * 3
    assert [e.responses[e.best] for e in res.examples] == ["4", "Hello!", "Hi there"]
    assert res.examples[2].messages[0].content == "Hey"

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows[:1] * 2), tmp_path / "pref.parquet")
    assert len(load(tmp_path / "pref.parquet").examples) == 2
    datasets.Dataset.from_list(rows[1:2]).save_to_disk(str(tmp_path / "hf"))
    hf = load_preference(tmp_path / "hf").examples[0]
    assert hf.responses[hf.best] == "Hello!"
    assert load(tmp_path / "hf").examples[0].source == "preference"


# ---- benchmark formats (fixtures in tests/fixtures/<benchmark>/, each in its official format) ----


def test_empty_responses_are_items():
    # An empty answer is a legitimate item a judge should rank last (the full RMB release has two).
    e = Example(id="e", source="s", messages=[user("q")], responses=["fine", "", "   "], best=0)
    assert e.responses[1:] == ["", "   "]
    res = load(FIX / "rmb")
    empty = [e for e in res.examples if "" in e.responses]
    assert len(empty) == 1 and empty[0].meta["uid"] == "s1" and empty[0].responses[empty[0].best] == "Use strong passwords."


@pytest.mark.parametrize(
    ("sub", "fmt"),
    [
        ("rewardbench", "rewardbench"),
        ("rewardbench-2", "rewardbench-2"),
        ("ppe/human-preference.jsonl", "ppe-preference"),
        ("ppe/gpqa-best-of-k.jsonl", "ppe-correctness"),
        ("rm-bench", "rm-bench"),
        ("rmb", "rmb"),
        ("judgebench", "judgebench"),
    ],
)
def test_fixture_formats_detected(sub, fmt):
    # load() detects each file's format from its first record.
    path = FIX / sub
    f = path if path.is_file() else sorted(path.iterdir())[0]
    first = json.loads(f.open().readline()) if f.suffix == ".jsonl" else json.loads(f.read_text())[0]
    assert detect_format(first, str(f)) == fmt
    assert {e.source for e in load(path).examples} == {fmt}


def test_rewardbench_loader():
    rows = [json.loads(line) for line in (FIX / "rewardbench" / "filtered.jsonl").open()]
    res = load_rewardbench(FIX / "rewardbench")
    assert len(res.examples) == len(rows) == 5
    for row, e in zip(rows, res.examples):
        # the section comes from `subset` (the real files have no `category`)
        assert e.category == row["subset"] == e.meta["subset"] and e.id == f"rewardbench/{row['id']}"
        assert e.responses[e.best] == row["chosen"] and e.responses[1 - e.best] == row["rejected"]
        assert e.meta["chosen_model"] == "gpt-4" and e.meta["group"] == e.id
    assert [e.meta["section"] for e in res.examples] == ["Chat", "Chat", "Chat", "Reasoning", "Reasoning"]
    assert len({e.best for e in res.examples}) == 2  # the chosen is not always first


def test_rewardbench2_loader_and_parquet(tmp_path):
    res = load_rewardbench2(FIX / "rewardbench-2")
    by_id = {e.meta["rb2_id"]: e for e in res.examples}
    f1 = by_id["f1"]
    assert f1.n == 4 and f1.responses[f1.best] == "F1 right" and f1.labels is None and f1.category == "Factuality"
    tied = by_id["tied:1"]
    assert tied.responses == ["Red (tied:1)", "Yellow (tied:1)", "Green (tied:1)", "Pink (tied:1)", "Brown (tied:1)"]
    assert tied.labels == [1, 1, 1, 0, 0] and tied.best is None
    assert (tied.meta["ties_kind"], tied.meta["ties_prompt"], tied.meta["num_correct"]) == ("tied", 1, 3)
    # ref and tied of one prompt share a scoring unit: the Ties formula compares them.
    assert tied.meta["group"] == by_id["ref:1"].meta["group"] == "rewardbench-2/ties/1"
    # The HF dataset is parquet: lists survive the round trip.
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (FIX / "rewardbench-2" / "test.jsonl").open()]
    for r in rows:
        r["additional_metadata"] = json.dumps(r["additional_metadata"])  # parquet needs a fixed type
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test-00000-of-00001.parquet")
    again = load(tmp_path)
    assert [e.model_dump() for e in again.examples] == [e.model_dump() for e in res.examples]


def test_rewardbench2_bad_records(tmp_path):
    base = {"prompt": "p", "subset": "Ties", "chosen": ["a", "b"], "rejected": ["x"], "num_correct": 2}
    rows = [
        {**base, "id": "tied:1"},
        {**base, "id": "tie-1"},  # not ref:N / tied:N
        {**base, "id": "tied:2", "num_correct": 3},  # disagrees with the chosen list
        {**base, "id": "ref:3", "rejected": []},  # no incorrect answer: the formula has nothing to compare
        {**base, "id": "f", "subset": "Focus"},  # best-of-4 with two chosen
    ]
    p = tmp_path / "rb2.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError) as err:
        load(p)
    assert str(err.value) == f"{p}: line 2: field 'id': a Ties id must look like 'ref:12' or 'tied:12', got 'tie-1'"
    res = load(p, skip_bad=True)
    assert len(res.examples) == 1
    assert [(e.record, e.field) for e in res.skipped.records] == [(2, "id"), (3, "num_correct"), (4, "rejected"), (5, "chosen")]


def test_ppe_loaders():
    pref = load_ppe_preference(FIX / "ppe" / "human-preference.jsonl").examples
    assert [e.best for e in pref] == [0, 1, 0, 1]  # winner model_a -> response_1, model_b -> response_2
    assert pref[0].responses == ["Answer one A", "Answer one B"] and pref[2].category == "German"
    cor = load_ppe_correctness(FIX / "ppe" / "math-best-of-k.jsonl").examples
    assert [e.category for e in cor] == ["math", "math"]
    assert cor[1].responses == ["7", "7.0", "8", "9"] and cor[1].labels == [1, 1, 0, 0] and cor[1].best is None
    both = load(FIX / "ppe")
    assert {e.source for e in both.examples} == {"ppe-preference", "ppe-correctness"}
    assert {e.category for e in both.examples if e.source == "ppe-correctness"} == {"gpqa", "math"}


def test_ppe_bad_records(tmp_path):
    ok = {"question_id": "q", "prompt": "p", "response_1": "a", "response_2": "b", "winner": "model_a"}
    p = tmp_path / "pref.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in [ok, {**ok, "winner": "tie"}, {**ok, "winner": "left"}]))
    res = load(p, skip_bad=True)
    assert len(res.examples) == 1
    assert [(e.record, e.field) for e in res.skipped.records] == [(2, "winner"), (3, "winner")]
    assert "a tie" in res.skipped.records[0].reason
    bok = {"question_id": "g", "prompt": "p", "response_1": "a", "response_2": "b", "response_3": "c", "scores": [True, False, False]}
    q = tmp_path / "gpqa.jsonl"
    q.write_text("\n".join(json.dumps(r) for r in [bok, {**bok, "scores": [True, False]}, {**bok, "scores": [True, "yes", False]}]))
    with pytest.raises(DataError) as err:
        load(q)
    assert str(err.value) == f"{q}: line 2: field 'scores': expected one correctness value per response (3), got a list of 2"
    unnamed = tmp_path / "bok.jsonl"
    unnamed.write_text(json.dumps(bok))
    with pytest.raises(DataError, match="field 'benchmark': cannot tell the benchmark"):
        load(unnamed)
    assert load(unnamed, format="ppe-correctness", skip_bad=True).skipped.count == 1
    named = tmp_path / "x.jsonl"
    named.write_text(json.dumps({**bok, "benchmark": "ifeval"}))
    assert load(named).examples[0].category == "ifeval"
