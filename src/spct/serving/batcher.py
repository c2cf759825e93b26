"""Dynamic batching: coalesce concurrent requests into one sampling call.

One worker thread owns the model. It takes the oldest waiting job, then keeps
collecting jobs until the batch's token estimate reaches ``max_batch_tokens``,
it holds ``max_batch_requests`` jobs, or ``max_wait_s`` has passed since that
first job: a lone request waits at most ``max_wait_s``; under load, whatever
queued while the previous batch ran goes into the next one at once.
``max_batch_requests=1`` turns batching off (one request per call).

A ``solo`` job runs as a batch of its own: a generation request that names a
``seed`` must get the same text whoever else is waiting, and sampled text
depends on which rows share a ``generate`` call.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("spct.serving")


class QueueFull(RuntimeError):
    """More jobs are waiting than the server accepts; the caller should retry later."""


@dataclass
class Job(Generic[T]):
    items: Sequence[T]
    tokens: int
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)
    started: float = 0.0
    solo: bool = False


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_tokens: int = 32_768
    max_batch_requests: int = 64
    max_wait_s: float = 0.010
    max_queue: int = 256


class Batcher(Generic[T, R]):
    """``run(items) -> results`` (same length, same order) called from one worker thread."""

    def __init__(self, run: Callable[[list[T]], list[R]], policy: BatchPolicy = BatchPolicy(),
                 on_batch: Callable[[list[Job[T]]], None] | None = None):
        self._run = run
        self.policy = policy
        self._on_batch = on_batch
        self._q: queue.Queue[Job[T] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Jobs that could not join the batch being collected lead the next ones, in arrival order.
        self._held: deque[Job[T]] = deque()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="spct-batcher", daemon=True)
            self._thread.start()

    def submit(self, items: Sequence[T], tokens: int, *, solo: bool = False) -> Future:
        if self._closed:
            raise QueueFull("the server is shutting down")
        if self.waiting >= self.policy.max_queue:
            raise QueueFull(f"{self.policy.max_queue} requests are already waiting")
        job: Job[T] = Job(items, tokens, solo=solo)
        self._q.put(job)
        return job.future

    def stop(self, timeout: float | None = None) -> None:
        """Finish every job already queued, then end the worker."""
        self._closed = True
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def waiting(self) -> int:
        return self._q.qsize() + len(self._held)

    def _collect(self, first: Job[T]) -> tuple[list[Job[T]], bool]:
        batch, tokens, p = [first], first.tokens, self.policy
        if first.solo:
            return batch, False
        deadline = first.enqueued + p.max_wait_s
        while len(batch) < p.max_batch_requests and tokens < p.max_batch_tokens:
            from_held = bool(self._held)
            try:
                nxt = self._held.popleft() if from_held else self._q.get_nowait()
            except queue.Empty:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    nxt = self._q.get(timeout=left)
                except queue.Empty:
                    break
            if nxt is None:
                return batch, True
            if nxt.solo or tokens + nxt.tokens > p.max_batch_tokens:
                # It leads the next batch, keeping its place among the held ones.
                (self._held.appendleft if from_held else self._held.append)(nxt)
                break
            batch.append(nxt)
            tokens += nxt.tokens
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._held.popleft() if self._held else self._q.get()
            if first is None:
                break
            batch, stop = self._collect(first)
            # Jobs whose caller gave up (timeout) are dropped before they cost anything.
            batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            now = time.perf_counter()
            for j in batch:
                j.started = now
            items = [it for j in batch for it in j.items]
            try:
                results = self._run(items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch returned {len(results)} results for {len(items)} items")
            except BaseException as e:  # every waiting caller must hear about it
                log.exception("batch of %d requests failed", len(batch))
                for j in batch:
                    j.future.set_exception(e)
                continue
            if self._on_batch is not None:
                try:
                    self._on_batch(batch)
                except Exception:  # bookkeeping must never stop the worker: every later caller would hang
                    log.exception("batch observer failed")
            pos = 0
            for j in batch:
                j.future.set_result(results[pos : pos + len(j.items)])
                pos += len(j.items)
        # Drain whatever is left after the stop marker (submit() refuses new work by now).
        while True:
            try:
                j = self._held.popleft() if self._held else self._q.get_nowait()
            except queue.Empty:
                break
            if j is not None and j.future.set_running_or_notify_cancel():
                try:
                    j.future.set_result(self._run(list(j.items)))
                except BaseException as e:
                    j.future.set_exception(e)

