"""Judges that never read the question, as real engines: they read the rendered judge prompt,
find each response block and write a critique with parseable scores. The evaluation must not
let them pass for a GRM (tests/test_eval_surface.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from spct.engine.sampler import Generation, SamplingParams

_BLOCK = re.compile(r"\[Response (\d+) start\]\n(.*?)\n\[Response \1 end\]", re.DOTALL)


class SurfaceEngine:
    """An engine whose 'critique' scores each response by ``rate(text)`` alone (1..10)."""

    tokenizer = None  # no chat template: spct.grm.prompt.render joins the chat as plain text

    def __init__(self, name: str, rate: Callable[[str], int]) -> None:
        self.name = name
        self.rate = rate

    def render(self, chat: Sequence[dict[str, str]]) -> str:
        return "\n\n".join(m["content"] for m in chat)

    def generate(self, prompts: Sequence[str], params: SamplingParams, n: int = 1, progress: bool = False) -> list[list[Generation]]:
        out = []
        for p in prompts:
            blocks = [body for _, body in _BLOCK.findall(p)]
            scores = [max(1, min(10, self.rate(b))) for b in blocks]
            text = (f"Specific Criteria:\n- surface (100%)\nAnalysis:\nI looked at the responses only.\n"
                    f"Scores: \\boxed{{{', '.join(map(str, scores))}}}")
            out.append([Generation(text, len(p.split()), list(range(len(text.split()))), True) for _ in range(n)])
        return out


def capital_share(text: str) -> int:
    """The share of a response's letters that are capitals, on the 1-10 scale (a count would clip at 10)."""
    letters = [c for c in text if c.isalpha()]
    return round(10 * sum(c.isupper() for c in letters) / max(1, len(letters)))


def capital_counter() -> SurfaceEngine:
    """Scores a response by its share of capital letters: it never checks the answer against the question."""
    return SurfaceEngine("capital-counter", capital_share)
