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
    order = {"greedy": (0, 0), **{k: (1 if m.group(1) == "voting" else 2, int(m.group(2))) for k in keys if (m := _K.match(k))}}
    return sorted(keys, key=lambda k: order.get(k, (3, 0)))


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    cols = columns(report)
    s = report["settings"]
    lines = [
        f"# spct evaluation: {report['model']}",
        "",
        f"spct {report['spct_version']}, {report['timestamp']}; ks={s['ks']}, temperature={s['temperature']}, "
        f"max_new_tokens={s['max_new_tokens']}, seed={s['seed']}, limit={s['limit']}. Accuracy in %.",
        "",
        "| dataset | benchmark | " + " | ".join(cols) + " | parse rate | n | tokens | seconds |",
        "|---|---|" + "---:|" * (len(cols) + 4),
    ]
    for name, e in report["datasets"].items():
        cells = [_pct(e.get(c)) for c in cols]
        lines.append(
            f"| {name} | {e['benchmark']} | " + " | ".join(cells)
            + f" | {_pct(e['parse_rate'])} | {e['n']} | {e['mean_generated_tokens']:.1f} | {e['seconds']:.1f} |"
        )
    for name, e in report["datasets"].items():
        res = e.get("results", {})
        cats = sorted({c for r in res.values() for c in r.get("categories", {})})
        if cats:
            lines += ["", f"## {name}: per category", "", "| category | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
            for c in cats:
                lines.append(f"| {c} | " + " | ".join(_pct(res.get(col, {}).get("categories", {}).get(c)) for col in cols) + " |")
        extra = _benchmark_extras(res, cols)
        if extra:
            lines += ["", f"## {name}: {e['benchmark']} breakdown", "", "| metric | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
            for metric in extra:
                lines.append(f"| {metric} | " + " | ".join(_pct(_dig(res.get(col, {}), metric)) for col in cols) + " |")
    return "\n".join(lines) + "\n"


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
    out = [k for k in ("hard", "normal", "easy", "inconsistent", "order_accuracy", "pair_accuracy", "category_mean") if k in first]
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
        for kind, style in (("voting", "-"), ("metarm", "--")):
            pts = sorted((int(m.group(2)), e[key]) for key in e if (m := _K.match(key)) and m.group(1) == kind)
            if pts:
                label = name if kind == "voting" else f"{name} (MetaRM)"
                ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], style, marker="o", color=color, label=label)
        if "greedy" in e:
            ax.plot([1], [100 * e["greedy"]], marker="x", linestyle="none", color=color, markersize=9)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (sampled critiques voted)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Inference-time scaling: {report['model']}  (x = greedy)")
    ax.grid(True, alpha=0.3)
    if report["datasets"]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


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
