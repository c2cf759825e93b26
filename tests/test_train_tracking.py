"""The metrics-logging interface: console + JSONL, fan-out, resume appends, rank-0 only."""

import io
import json

from spct.tracking import ConsoleLogger, JsonlLogger, MetricsLogger, MultiLogger, default_logger, flatten, read_jsonl_metrics


def test_jsonl_and_console_through_one_multilogger(tmp_path):
    stream = io.StringIO()
    jsonl = JsonlLogger(tmp_path / "m.jsonl")
    lg = MultiLogger(ConsoleLogger(every=2, stream=stream), jsonl)
    assert isinstance(lg, MetricsLogger) and isinstance(jsonl, MetricsLogger)
    lg.log_params({"grpo": {"beta": 0.08, "G": 4}, "name": "tiny"})
    for step in (1, 2):
        lg.log_metrics({"reward": 0.5 * step, "kl": float("nan")}, step)
    lg.log_artifact(tmp_path / "model")
    lg.close()

    lines = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["params", "metrics", "metrics", "artifact"]
    assert lines[0]["params"] == {"grpo.beta": 0.08, "grpo.G": 4, "name": "tiny"}
    assert lines[2]["metrics"] == {"reward": 1.0, "kl": None}  # NaN is not JSON: written as null
    assert "step 2: reward=1" in stream.getvalue() and "step 1:" not in stream.getvalue()  # every 2nd step

    again = JsonlLogger(tmp_path / "m.jsonl")  # a resumed run appends
    again.log_metrics({"reward": 2.0}, 3)
    again.close()
    assert [r["step"] for r in read_jsonl_metrics(tmp_path / "m.jsonl")] == [1, 2, 3]


def test_only_rank_zero_writes(tmp_path):
    default_logger(tmp_path / "r1", rank=1).log_metrics({"x": 1.0}, 1)
    assert not (tmp_path / "r1").exists()
    lg = default_logger(tmp_path / "r0", rank=0)
    lg.log_metrics({"x": 1.0}, 1)
    lg.close()
    assert (tmp_path / "r0" / "metrics.jsonl").is_file()
    assert flatten({"a": {"b": {"c": 1}}}) == {"a.b.c": 1}
