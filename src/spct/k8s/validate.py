"""Validate rendered Kubernetes objects offline.

Built-in kinds go through ``kubernetes-validate`` (the upstream OpenAPI schemas,
strict: unknown fields are errors, as ``kubectl apply --validate=strict`` makes
them). ``kubernetes-validate`` only warns on custom resources, so those are
checked with ``jsonschema`` against their CRD's ``openAPIV3Schema``, made strict
the same way (unknown fields are errors unless the schema preserves them).
No API server is involved: admission webhooks, defaulting and RBAC are not
checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

K8S_VERSION = "1.33"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Problem:
    """One reason an object would be refused: where it is and what is wrong."""

    kind: str
    name: str
    path: str
    message: str
    source: str = ""  # template file, from helm's "# Source:" comment

    def __str__(self) -> str:
        where = f" ({self.source})" if self.source else ""
        return f"{self.kind}/{self.name}{where} at {self.path or '<root>'}: {self.message}"


def _documents(rendered: str | Iterable[Mapping[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    if not isinstance(rendered, str):
        return [(dict(o), "") for o in rendered if o]
    out = []
    for chunk in re.split(r"(?m)^---\s*$", rendered):
        source = re.search(r"(?m)^# Source: (.+)$", chunk)
        obj = yaml.safe_load(chunk)
        if obj:
            out.append((obj, source.group(1).strip() if source else ""))
    return out


def _strict(schema: Any) -> Any:
    """Unknown fields become errors, except where the schema preserves them."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _read_yaml(path: Path) -> list[Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the KServe CRD is ~2 MB
    with path.open() as f:
        return [d for d in yaml.load_all(f, Loader=loader) if d]


@lru_cache(maxsize=16)
def _crd_schemas(dirs: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for d in dirs:
        files = sorted(Path(d).glob("*.yaml")) + sorted(Path(d).glob("*.yml"))
        if not files:
            raise FileNotFoundError(f"no CRD YAML files in {d}")
        for f in files:
            for doc in _read_yaml(f):
                if doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for v in spec["versions"]:
                    api = f"{spec['group']}/{v['name']}"
                    schemas[(api, spec["names"]["kind"])] = _strict(v["schema"]["openAPIV3Schema"])
    return schemas


def load_crd_schemas(crd_dirs: Sequence[str | Path]) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(apiVersion, kind): strict openAPIV3Schema}`` for every CRD YAML in the folders."""
    return _crd_schemas(tuple(str(Path(d).resolve()) for d in crd_dirs))


def _path(parts: Iterable[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _check_custom(obj: dict[str, Any], schema: dict[str, Any], kind: str, name: str, source: str) -> list[Problem]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    return [
        Problem(kind, name, _path(e.absolute_path), e.message[:500], source)
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _check_builtin(obj: dict[str, Any], kind: str, name: str, source: str, version: str) -> list[Problem]:
    import kubernetes_validate as kv

    try:
        kv.validate(obj, version, strict=True)
    except kv.ValidationError as e:
        return [Problem(kind, name, _path(e.absolute_path), e.message[:500], source)]
    except kv.SchemaNotFoundError:
        return [Problem(kind, name, "apiVersion", f"no schema for {obj.get('apiVersion')} {kind} in Kubernetes {version} "
                        "(a custom resource needs its CRD in crd_dirs)", source)]
    return []


def validate_rendered(
    rendered: str | Iterable[Mapping[str, Any]],
    crd_dirs: Sequence[str | Path] = (),
    *,
    k8s_version: str = K8S_VERSION,
) -> list[Problem]:
    """Every problem in a multi-document YAML string (e.g. ``helm template`` output) or a list of objects.

    An empty list means every object is valid for its kind; a kind with no
    schema at all (neither built in nor in ``crd_dirs``) is itself a problem.
    """
    custom = load_crd_schemas(crd_dirs) if crd_dirs else {}
    problems: list[Problem] = []
    for obj, source in _documents(rendered):
        if not isinstance(obj, dict):
            problems.append(Problem("?", "?", "", f"not a mapping: {type(obj).__name__}", source))
            continue
        kind = str(obj.get("kind") or "?")
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name = str(meta.get("name") or "?")
        missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
        if missing or not meta.get("name"):
            problems.append(Problem(kind, name, "", f"missing {', '.join(missing or ['metadata.name'])}", source))
            continue
        if len(name) > 253 or not _NAME.match(name):
            problems.append(Problem(kind, name, "metadata.name", "not a valid RFC 1123 name (lower-case alphanumerics, '-', '.')", source))
        schema = custom.get((obj["apiVersion"], kind))
        if schema is not None:
            problems += _check_custom(obj, schema, kind, name, source)
        else:
            problems += _check_builtin(obj, kind, name, source, k8s_version)
    return problems
