"""``python -m spct.serving ...``: the same as ``spct serve ...`` (the container entry point)."""

from spct.cli.app import app
from spct.cli import serve as _serve  # noqa: F401

app(prog_name="spct")
