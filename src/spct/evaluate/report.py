"""The evaluation's four outputs: report.json, report.md, scaling.png and samples.jsonl.

Every file is written to a temporary name beside its target and then renamed,
so a crash never leaves a half-written report that looks complete.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

FILES = ("report.json", "report.md", "scaling.png", "samples.jsonl")
_K = re.compile(r"^(voting|metarm)@(\d+)$")


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def columns(report: Mapping[str, Any]) -> list[str]:
    """Result columns present in any dataset: greedy, voting@k..., metarm@k..., in k order."""
    keys: set[str] = set()
    for entry in report["datasets"].values():
        keys |= set(entry.get("results", {}))
    order = {"greedy": (0, 0), **{k: (0, 1) for k in keys if k.endswith("_greedy")},  # a reference model's, beside it
             **{k: (1 if m.group(1) == "voting" else 2, int(m.group(2))) for k in keys if (m := _K.match(k))}}
    return sorted(keys, key=lambda k: order.get(k, (3, 0)))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _ci(ci: Any) -> str:
    return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}" if ci else ""


# The baselines every row shows, in order: position (chance, first slot, last slot), then surface
# (a response-only classifier, longest, shortest): judges that never read the question.
BASELINE_COLUMNS = {"chance": "chance", "first_slot": "first slot", "last_slot": "last slot",
                    "response_only": "response-only", "longest": "longest", "shortest": "shortest"}
ROW_HEADER = ["accuracy", "95% CI", "paper", *BASELINE_COLUMNS.values(), "above baselines", "items", "distinct", "judgments"]


def result_row(res: Mapping[str, Any]) -> list[str]:
    """One column's figures as table cells: the official headline with its interval, the paper's
    tie-break, the position and surface baselines on the same items, and the sizes behind them
    (items, distinct items = content groups the interval resamples, judgments)."""
    b = res.get("baselines", {})
    return [
        _pct(res.get("accuracy")), _ci(res.get("ci95")), _pct(res.get("accuracy_paper")),
        *(_pct(b.get(k)) if k in b else "n/a" for k in BASELINE_COLUMNS),
        "yes" if res.get("above_baselines") else "no", str(res.get("items", "")),
        str(res.get("distinct", res.get("items", ""))), str(res.get("judgments", "")),
    ]  # fmt: skip


def greedy_notes(res: Mapping[str, Any]) -> str:
    shares = ", ".join(f"{k}: {_pct(v)}" for k, v in res.get("slot_shares", {}).items())
    return f"greedy in every order: consistent on {_pct(res.get('consistency'))}% of items; picks per presented slot (%) {shares}"


def render_markdown(report: Mapping[str, Any]) -> str:
    cols = columns(report)
    s = report["settings"]
    sp = s["sampling"]
    lines = [
        f"# spct evaluation: {report['model']}",
        "",
        f"spct {report['spct_version']}, {report['timestamp']}; ks={s['ks']}, temperature={sp['temperature']}, "
        f"max_new_tokens={sp['max_new_tokens']}, seed={sp['seed']}, limit={s['limit']}. Accuracy in %.",
        "",
        "*accuracy* follows the benchmark's official script (a tie or an unparsed judgment is a miss "
        "where the script says so); *paper* breaks ties at random after shuffling, as the paper reports. "
        "Greedy judges every order of the responses (each counted). *chance*, *first slot* and *last slot* "
        "are what a random judge and judges that always name the first or the last presented response score "
        "on the same items and orders; *response-only* is a classifier of each response on its own (n-grams, "
        "never the question), *longest*/*shortest* pick by length (n/a: could not be fitted or does not apply); "
        "*above baselines* = the whole 95% interval (bootstrap over distinct items: copies of the same "
        "question and answers are drawn together) clears the best of all six.",
        "",
        "| dataset | benchmark | column | " + " | ".join(ROW_HEADER) + " |",
        "|---|---|---|" + "---:|" * len(ROW_HEADER),
    ]
    for name, e in report["datasets"].items():
        for c in cols:
            if c in e.get("results", {}):
                lines.append(f"| {name} | {e['benchmark']} | {c} | " + " | ".join(result_row(e["results"][c])) + " |")
    diffs = [(name, label, d) for name, e in report["datasets"].items() for label, d in (e.get("differences") or {}).items()]
    if diffs:
        ref = report.get("reference") or {}
        lines += ["", f"Paired differences (the same items, a bootstrap over distinct items drawing both columns together; "
                  f"`{ref.get('label', 'reference')}` = {ref.get('model') or 'the reference model'}):", "",
                  "| dataset | difference | points | paired 95% CI | distinct items |", "|---|---|---:|---:|---:|"]
        for name, label, d in diffs:
            ci = d.get("ci95") or [float("nan")] * 2
            lines.append(f"| {name} | {label} | {100 * d['difference']:+.1f} | {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} | "
                         f"{d['groups']} |")
    lines += ["", "| dataset | parse rate | greedy parse rate | examples | tokens | seconds | held out |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, e in report["datasets"].items():
        lines.append(
            f"| {name} | {_pct(e['parse_rate'])} | {_pct(e.get('greedy_parse_rate'))} | {e['n']} | "
            f"{e['mean_generated_tokens']:.1f} | {e['seconds']:.1f} | {heldout_note(e)} |"
        )
    for name, e in report["datasets"].items():
        if "greedy" in e.get("results", {}):
            lines += ["", f"{name}: {greedy_notes(e['results']['greedy'])}."]
        lines += ["", f"{name}: {data_notes(e)}."]
        unofficial = [c for c in cols if e.get("results", {}).get(c, {}).get("protocol_official") is False]
        if unofficial:
            lines += ["", f"{name}: {', '.join(unofficial)}: {e['results'][unofficial[0]]['protocol']}."]
    for name, e in report["datasets"].items():
        res = e.get("results", {})
        cats = sorted({c for r in res.values() for c in r.get("categories", {})})
        first = res.get(cols[0], {}) if cols else {}
        ro = (first.get("baseline_categories") or {}).get("response_only", {})
        if cats:
            head = ["category", *cols] + (["response-only"] if ro else [])
            lines += ["", f"## {name}: per category", "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
            for c in cats:
                cells = [_pct(res.get(col, {}).get("categories", {}).get(c)) for col in cols] + ([_pct(ro.get(c))] if ro else [])
                lines.append(f"| {c} | " + " | ".join(cells) + " |")
        mistakes = first.get("mistakes") or {}
        if mistakes:
            lines += ["", f"## {name}: per mistake type ({cols[0]})", "",
                      "| mistake | items | accuracy | response-only |", "|---|---:|---:|---:|"]
            for m, v in mistakes.items():
                lines.append(f"| {m} | {v['items']} | {_pct(v['accuracy'])} | {_pct(v.get('response_only'))} |")
        extra = _benchmark_extras(res, cols)
        if extra:
            lines += ["", f"## {name}: {e['benchmark']} breakdown", "", "| metric | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
            for metric in extra:
                lines.append(f"| {metric} | " + " | ".join(_pct(_dig(res.get(col, {}), metric)) for col in cols) + " |")
    return "\n".join(lines) + "\n"


def data_notes(e: Mapping[str, Any]) -> str:
    """Distinct items behind the intervals, and how the response-only baseline was fitted."""
    items, distinct = e.get("items", e.get("n")), e.get("distinct", e.get("items", e.get("n")))
    surface = e.get("surface") or {}
    if surface.get("fitted_on"):
        fit = f"response-only baseline fitted on {surface['fitted_on']} ({surface.get('train_responses', 0)} responses)"
    else:
        fit = f"response-only baseline not fitted ({surface.get('error', 'no data')})"
    return f"{items} items, {distinct} distinct ({e.get('duplicates', 0)} duplicates drawn together by the bootstrap); {fit}"


def heldout_note(e: Mapping[str, Any]) -> str:
    h = (e.get("data") or {}).get("heldout")
    if not h:
        return "not checked"
    if h.get("overlapping"):
        return f"NO: {len(h['overlapping'])} items shared with training (allowed by --allow-overlap)"
    return f"yes ({h.get('training_items', 0)} training items checked)"


def _dig(d: Mapping[str, Any], dotted: str) -> float | None:
    node: Any = d
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, (int, float)) else None


def _benchmark_extras(res: Mapping[str, Mapping[str, Any]], cols: list[str]) -> list[str]:
    """Scalar fields beyond accuracy/categories, e.g. RM-Bench hard/normal/easy, RewardBench sections."""
    if not cols:
        return []
    first = res[cols[0]]
    out = [k for k in ("hard", "normal", "easy", "inconsistent", "order_accuracy", "pair_accuracy", "category_mean", "set_mean")
           if k in first]
    for group in ("sections", "sets"):
        out += [f"{group}.{k}" for k in first.get(group, {})]
    return out


def plot_scaling(report: Mapping[str, Any], path: Path) -> None:
    """Accuracy against k, one line per dataset; MetaRM@k dashed, greedy a marker at k=1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for i, (name, e) in enumerate(report["datasets"].items()):
        color = f"C{i % 10}"
        res = e.get("results", {})
        for kind, style in (("voting", "-"), ("metarm", "--")):
            pts = sorted((int(m.group(2)), key) for key in res if (m := _K.match(key)) and m.group(1) == kind)
            if pts:
                label = name if kind == "voting" else f"{name} (MetaRM)"
                ks = [p[0] * (1.04 if kind == "metarm" else 1.0) for p in pts]  # side by side, not on top
                acc = [100 * res[key]["accuracy"] for _, key in pts]
                err = error_bars([res[key].get("ci95") for _, key in pts], acc)
                ax.errorbar(ks, acc, yerr=err, fmt=style, marker="o", color=color, label=label, capsize=3)
        if "greedy" in res:
            g = res["greedy"]
            ax.errorbar([0.96], [100 * g["accuracy"]], yerr=error_bars([g.get("ci95")], [100 * g["accuracy"]]),
                        marker="x", linestyle="none", color=color, markersize=9, capsize=3)
        best_base = max((res[k].get("baselines", {}) for k in res), key=lambda b: max(b.values(), default=0), default={})
        if best_base:
            ax.axhline(100 * max(best_base.values()), color=color, linestyle=":", linewidth=1)  # position or surface
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (sampled critiques voted)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Inference-time scaling: {report['model']}\n(x = greedy, every order; bars = 95% CI; dotted = best position or surface baseline)", fontsize=9)
    ax.grid(True, alpha=0.3)
    if report["datasets"]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def error_bars(cis: list[Any], acc: list[float]) -> Any:
    if any(ci is None for ci in cis):
        return None
    return [[a - 100 * ci[0] for a, ci in zip(acc, cis)], [100 * ci[1] - a for a, ci in zip(acc, cis)]]


def write_report(out_dir: str | Path, report: Mapping[str, Any], samples: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Write the four files into ``out_dir`` (created); returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in FILES}
    with atomic_open(paths["samples.jsonl"]) as f:
        for rec in samples:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    plot_scaling(report, paths["scaling.png"])
    with atomic_open(paths["report.md"]) as f:
        f.write(render_markdown(report))
    with atomic_open(paths["report.json"]) as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return {k: str(v) for k, v in paths.items()}
