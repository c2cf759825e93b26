"""scripts/mutate.py: every mutation in its table is killed by the tests it names (tens of seconds)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_mutation_table_applies_to_todays_code():
    # Cheap and always run: each mutation's old text is found exactly once (no code drift).
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import mutate
    finally:
        sys.path.pop(0)
    assert [m.id for m in mutate.MUTATIONS if mutate.check_text(m)] == []
    assert len({m.id for m in mutate.MUTATIONS}) == len(mutate.MUTATIONS)


@pytest.mark.slow
def test_every_mutation_is_killed():
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutate.py")], cwd=ROOT, capture_output=True, text=True, timeout=580)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    assert "SURVIVED" not in p.stdout and "NO BASELINE" not in p.stdout
