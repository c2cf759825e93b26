"""``spct`` command line. Each module below adds its commands to :data:`app`."""

from spct.cli.app import app

# Registration happens on import; keep one line per command module.
from spct.cli import data as _data  # noqa: E402,F401
from spct.cli import evaluate as _evaluate  # noqa: E402,F401
from spct.cli import serve as _serve  # noqa: E402,F401
from spct.cli import pipeline as _pipeline  # noqa: E402,F401
from spct.cli import train as _train  # noqa: E402,F401


def main() -> None:
    app()


__all__ = ["app", "main"]
