"""Versions, aliases and the gated promotion in the MLflow model registry.

A new version gets the alias ``challenger``. :func:`promote` moves ``champion`` to
it only if the gate passes, and writes the decision and its numbers as tags on the
version; :func:`rollback` moves ``champion`` back to the champion it replaced.

The gate compares the challenger with the champion and with the best version ever
promoted on the same gate set (:func:`best_promoted`), so a chain of promotions that
each lose a little cannot drift down; a version that was rolled back no longer sets
that bar (the rollback said it should not have been champion).

Promotions and rollbacks are serialised by a lock that is itself a registered model
(``<name>.promotion-lock``): creating a registered model is atomic in every MLflow
store (a unique key in the SQL store), so two promoters racing cannot both hold it,
and each one's read of the current champion is the one it replaces.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spct.registry.gate import Decision, GateMetrics, GatePolicy, decide

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_TAG = "spct.previous_champion"
DECISION_TAG = "spct.gate.decision"
ROLLED_BACK_TAG = "spct.rolled_back_at"


class RegistryError(RuntimeError):
    """A registry operation that cannot go ahead; the message says why."""


def _is(e: Exception, code: str) -> bool:
    return getattr(e, "error_code", None) == code


def lock_name(name: str) -> str:
    return f"{name}.promotion-lock"


@contextmanager
def promotion_lock(client: "MlflowClient", name: str, *, timeout_s: float = 120.0, stale_s: float = 600.0) -> Iterator[str]:
    """Hold the model's promotion lock; a lock older than ``stale_s`` (a crashed holder) is broken."""
    from mlflow.exceptions import MlflowException

    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    lname = lock_name(name)
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            client.create_registered_model(lname, tags={"spct.lock.owner": owner, "spct.lock.since": f"{time.time():.3f}"})
            break
        except MlflowException as e:
            if not _is(e, "RESOURCE_ALREADY_EXISTS"):
                raise
        try:
            held = client.get_registered_model(lname)
            since = float(held.tags.get("spct.lock.since", "0"))
            if time.time() - since > stale_s:
                client.delete_registered_model(lname)
                continue
        except MlflowException as e:
            if not _is(e, "RESOURCE_DOES_NOT_EXIST"):
                raise
            continue  # released between our create and our read: try again at once
        if time.monotonic() > deadline:
            raise RegistryError(f"could not take the promotion lock {lname!r} within {timeout_s:.0f}s (held by {held.tags.get('spct.lock.owner')})")
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)
    try:
        yield owner
    finally:
        try:
            if client.get_registered_model(lname).tags.get("spct.lock.owner") == owner:
                client.delete_registered_model(lname)
        except MlflowException:
            pass


def _by_alias(client: "MlflowClient", name: str, alias: str) -> "ModelVersion | None":
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if _is(e, "RESOURCE_DOES_NOT_EXIST") or _is(e, "INVALID_PARAMETER_VALUE"):
            return None
        raise


def register_version(
    client: "MlflowClient",
    name: str,
    model_uri: str,
    metrics: GateMetrics | None = None,
    *,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
    model_id: str | None = None,
) -> "ModelVersion":
    """Register ``model_uri`` as a new version of ``name`` with its gate metrics as tags; alias it ``challenger``."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description="SPCT generative reward model (spct)")
    except MlflowException as e:
        if not _is(e, "RESOURCE_ALREADY_EXISTS"):
            raise
    all_tags = dict(tags or {})
    if metrics is not None:
        all_tags.update(metrics.to_tags())
    mv = client.create_model_version(name, model_uri, run_id=run_id, tags=all_tags, model_id=model_id)
    _wait_ready(client, name, mv.version)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    return client.get_model_version(name, mv.version)


def _wait_ready(client: "MlflowClient", name: str, version: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get_model_version(name, version).status == "PENDING_REGISTRATION":
        if time.monotonic() > deadline:
            raise RegistryError(f"{name} version {version} is still pending registration after {timeout_s:.0f}s")
        time.sleep(0.2)


def _versions(client: "MlflowClient", name: str) -> Iterator["ModelVersion"]:
    """Every version of ``name``, page by page (a search returns at most one page)."""
    token = None
    while True:
        page = client.search_model_versions(f"name = '{name}'", page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def best_promoted(
    client: "MlflowClient", name: str, gate_set: str, *, exclude: str | None = None
) -> tuple[str, GateMetrics] | None:
    """The promoted version with the highest gate accuracy on ``gate_set``: ``(version, metrics)``.

    Versions measured on another gate set are not comparable and are skipped; so is one that
    was rolled back (and not promoted again since), and ``exclude`` (the challenger itself).
    """
    best: tuple[str, GateMetrics] | None = None
    for mv in _versions(client, name):
        if str(mv.version) == exclude or mv.tags.get(DECISION_TAG) != "promoted" or mv.tags.get(ROLLED_BACK_TAG):
            continue
        m = GateMetrics.from_tags(mv.tags)
        if m is None or m.gate_set != gate_set:
            continue
        if best is None or m.accuracy > best[1].accuracy:
            best = (str(mv.version), m)
    return best


def set_gate_metrics(client: "MlflowClient", name: str, version: str, metrics: GateMetrics) -> None:
    for k, v in metrics.to_tags().items():
        client.set_model_version_tag(name, version, k, v)


def promote(
    client: "MlflowClient",
    name: str,
    version: str | int | None = None,
    policy: GatePolicy | None = None,
    *,
    lock_timeout_s: float = 120.0,
) -> Decision:
    """Gate ``version`` (default: the ``challenger``) against the champion and the best promoted version
    on the same gate set; move ``champion`` if it passes. ``policy`` defaults to :class:`GatePolicy`'s defaults."""
    policy = policy or GatePolicy()
    with promotion_lock(client, name, timeout_s=lock_timeout_s):
        if version is None:
            mv = _by_alias(client, name, CHALLENGER)
            if mv is None:
                raise RegistryError(f"model {name!r} has no {CHALLENGER!r} version to promote")
        else:
            mv = client.get_model_version(name, str(version))
        challenger = GateMetrics.from_tags(mv.tags)
        if challenger is None:
            raise RegistryError(f"{name} version {mv.version} has no gate metrics (tags spct.gate.*); evaluate it on the gate set first")
        current = _by_alias(client, name, CHAMPION)
        if current is not None and current.version == mv.version:
            return Decision(True, [f"version {mv.version} is already the champion"], challenger, challenger, policy)
        champion = GateMetrics.from_tags(current.tags) if current is not None else None
        if current is not None and champion is None:
            raise RegistryError(f"champion {name} version {current.version} has no gate metrics; evaluate it on the gate set first")
        # Read under the lock, like the champion: a racing promotion cannot slip a better version in between.
        best = best_promoted(client, name, challenger.gate_set, exclude=str(mv.version))
        if current is not None and champion is not None and champion.gate_set == challenger.gate_set and (
            best is None or champion.accuracy > best[1].accuracy
        ):
            best = (str(current.version), champion)  # a champion set by hand has no decision tag but still counts
        decision = decide(challenger, champion, policy, best[1] if best else None, best_version=best[0] if best else "")
        tags = decision.to_tags() | {
            "spct.gate.decided_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "spct.gate.champion_version": current.version if current is not None else "",
        }
        for k, v in tags.items():
            client.set_model_version_tag(name, mv.version, k, v)
        if decision.promote:
            client.set_model_version_tag(name, mv.version, PREVIOUS_TAG, current.version if current is not None else "")
            if ROLLED_BACK_TAG in mv.tags:
                # Promoted again after a rollback: it sets the best-promoted bar again (best_promoted).
                client.delete_model_version_tag(name, mv.version, ROLLED_BACK_TAG)
            client.set_registered_model_alias(name, CHAMPION, mv.version)
        return decision


def rollback(client: "MlflowClient", name: str, *, lock_timeout_s: float = 120.0) -> tuple[str, str]:
    """Move ``champion`` back to the version it replaced; returns ``(from_version, to_version)``."""
    with promotion_lock(client, name, timeout_s=lock_timeout_s):
        current = _by_alias(client, name, CHAMPION)
        if current is None:
            raise RegistryError(f"model {name!r} has no champion to roll back")
        previous = current.tags.get(PREVIOUS_TAG, "")
        if not previous:
            raise RegistryError(f"{name} version {current.version} has no previous champion to roll back to")
        client.get_model_version(name, previous)  # fails clearly if it was deleted
        client.set_registered_model_alias(name, CHAMPION, previous)
        client.set_model_version_tag(name, current.version, ROLLED_BACK_TAG, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return current.version, previous


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: list[str]
    created: str
    run_id: str | None
    metrics: GateMetrics | None
    decision: str
    previous_champion: str


def list_versions(client: "MlflowClient", name: str) -> list[VersionRow]:
    """Every version of ``name``, newest first, with aliases and gate numbers."""
    model = client.get_registered_model(name)
    aliases: dict[str, list[str]] = {}
    for alias, v in (model.aliases or {}).items():
        aliases.setdefault(str(v), []).append(alias)
    rows = []
    for mv in _versions(client, name):
        rows.append(
            VersionRow(
                version=str(mv.version),
                aliases=sorted(aliases.get(str(mv.version), [])),
                created=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mv.creation_timestamp / 1000)),
                run_id=mv.run_id,
                metrics=GateMetrics.from_tags(mv.tags),
                decision=mv.tags.get(DECISION_TAG, ""),
                previous_champion=mv.tags.get(PREVIOUS_TAG, ""),
            )
        )
    return sorted(rows, key=lambda r: int(r.version), reverse=True)
