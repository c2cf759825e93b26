"""Loaders on the real shared data, broken files, --skip-bad and format detection."""

import gzip
import json
from pathlib import Path

import pytest

from spct.data import DataError, detect_format, load, load_hh_rlhf, load_judgebench, load_preference, load_rm_bench, load_rmb

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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


def test_judgebench_both_orders():
    res = load_judgebench(DATA / "judgebench")
    assert len(res.examples) == 620 * 2
    ab = {e.meta["pair_id"]: e for e in res.examples if e.meta["order"] == "AB"}
    ba = {e.meta["pair_id"]: e for e in res.examples if e.meta["order"] == "BA"}
    assert ab.keys() == ba.keys() and len(ab) == 620
    for pid, e in ab.items():
        assert e.id == f"{pid}:AB" and ba[pid].id == f"{pid}:BA"
        assert e.responses == ba[pid].responses[::-1]
        assert e.responses[e.best] == ba[pid].responses[ba[pid].best]
        assert (e.best == 0) == (e.meta["label"] == "A>B")
    assert {e.category for e in res.examples} == {"knowledge", "reasoning", "math", "coding"}
    assert {e.meta["response_model"] for e in res.examples} == {"gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620"}


def test_hh_rlhf_real_file():
    path = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    # The upstream file holds 4 pairs whose chosen reply is empty: strict loading names the first.
    with pytest.raises(DataError) as err:
        load_hh_rlhf(path)
    assert err.value.record == 87 and err.value.field == "chosen" and "line 87" in str(err.value)
    res = load_hh_rlhf(path, skip_bad=True)
    assert len(res.examples) + res.skipped.count == 2312
    assert res.skipped.count == 4 and res.skipped.by_reason() == {"chosen: the final Assistant reply is empty": 4}
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
    with pytest.raises(DataError, match="tried rm-bench, judgebench, rmb, hh-rlhf, spct, preference"):
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
    items[3]["rejected"] = ["x", "", "z"]
    p = tmp_path / "chat.json"
    p.write_text(json.dumps(items))
    with pytest.raises(DataError) as err:
        load(p)
    assert str(err.value) == f"{p}: record 1: field 'chosen': expected a list of 3 strings, got a list of 2"
    res = load(p, skip_bad=True)
    assert len(res.examples) == 9
    assert [(e.record, e.field) for e in res.skipped.records] == [(1, "chosen"), (2, "prompt"), (3, "rejected")]


def test_judgebench_bad_label_and_empty_response(tmp_path):
    good = {"pair_id": "p", "source": "livebench-math", "question": "q", "response_model": "m", "response_A": "a", "response_B": "b", "label": "A>B"}
    lines = [good, {**good, "pair_id": "q", "label": "A=B"}, {**good, "pair_id": "r", "response_B": "  "}]
    p = tmp_path / "jb.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"pair_id\": \"trunc\n")
    with pytest.raises(DataError) as err:
        load_judgebench(p)
    assert (err.value.record, err.value.field) == (2, "label") and "line 2" in str(err.value) and "'A=B'" in str(err.value)
    res = load(p, skip_bad=True)
    assert [e.id for e in res.examples] == ["p:AB", "p:BA"]
    assert [(e.record, e.field) for e in res.skipped.records] == [(2, "label"), (3, "response_B"), (4, None)]
    assert "empty" in res.skipped.records[1].reason and "invalid JSON" in res.skipped.records[2].reason


def test_hh_rlhf_bad_records(tmp_path):
    ok = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}
    bad = [
        {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: bye\n\nAssistant: b"},  # no common prefix
        {"chosen": "\n\nHuman: hi", "rejected": "\n\nHuman: ho"},  # no assistant turn
        {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi\n\nAssistant:   "},  # empty reply
    ]
    p = tmp_path / "hh.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in [ok, *bad]))
    res = load(p, skip_bad=True)
    assert len(res.examples) == 1 and res.skipped.count == 3
    assert [(e.record, e.field) for e in res.skipped.records] == [(2, "rejected"), (3, "rejected"), (4, "rejected")]
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
