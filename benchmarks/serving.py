"""The serving stack under load: dynamic batching on vs off, latency, overhead over the library, fuzz.

    .venv/bin/python benchmarks/serving.py                     # demo model (SmolLM2-135M-Instruct)
    .venv/bin/python benchmarks/serving.py --model tiny --max-new-tokens 8 --fuzz 2000

What it measures, each against a real ``spct serve`` process on 127.0.0.1:

1. Throughput at ``--clients`` concurrent clients (closed loop, each sends
   ``--requests`` judge requests one after another), once with dynamic batching
   and once with ``--no-batching``; target ratio >= 2.5x.
2. p50/p99 latency of those requests.
3. Server overhead at p50, target <= 10%, two ways: single requests (one client)
   through HTTP vs the same judgment by a direct ``spct.grm.judge.judge`` call in
   this process, interleaved request by request; and, per request, the client's
   wall time vs the library step (``sample_judgments`` + voting) the server timed
   for that same request (``timings.generate_ms``), which is immune to the
   background load drifting between two separate calls.
4. A fuzz run of ``--fuzz`` malformed requests (mutated V1/V2 bodies, junk bytes)
   against a server of ``--fuzz-model`` (tiny by default): crashes (the server
   process dies or drops a connection), 5xx answers, and 4xx answers without a
   ``field``.

Every generation has exactly ``--max-new-tokens`` tokens (min = max), so both
modes and the direct call do the same work. Each mode first gets an untimed
warm pass (one request per client), and the single-request set is sent twice
with the second pass timed, in the server and in the direct call alike: on CPU
the first call at a new tensor shape is several times slower than later ones.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import httpx

NAME = "spct-grm"
QUESTIONS = [
    ("What is the capital of Australia?", "Canberra is the capital of Australia.", "Sydney is the capital of Australia."),
    ("How do I reverse a list in Python?", "Use my_list[::-1] or my_list.reverse().", "Lists cannot be reversed in Python."),
    ("Why is the sky blue?", "Air scatters short blue wavelengths more (Rayleigh scattering).", "It reflects the ocean."),
    ("Give one tip to sleep better.", "Keep a regular bedtime and a dark, cool room.", "Drink coffee right before bed."),
    ("What is 12 * 12?", "12 * 12 = 144.", "12 * 12 = 124."),
    ("Name a prime number above 10.", "11 is prime.", "12 is prime."),
    ("What does HTTP 404 mean?", "The server cannot find the requested resource.", "The server is overloaded."),
    ("Translate 'thank you' to French.", "Merci.", "Bonjour."),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_bundle(spec: str, root: Path, max_new_tokens: int) -> Path:
    """The model as a GRM bundle (files linked, not copied) with fixed-length generations."""
    from spct.engine.models import model_dir

    src = model_dir(spec)
    out = root / "bundle"
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != "spct.json":
            (out / f.name).symlink_to(f.resolve())
    cfg = {"name": NAME, "k": 1, "temperature": 0.5, "max_new_tokens": max_new_tokens, "min_new_tokens": max_new_tokens}
    (out / "spct.json").write_text(json.dumps(cfg))
    return out


class Server:
    def __init__(self, bundle: Path, log: Path, *flags: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "wb")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spct.serving", "serve", "--model", str(bundle), "--port", str(self.port),
             "--name", NAME, "--device", "cpu", "--timeout-s", "3600", *flags],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log}")
            try:
                if httpx.get(f"{self.url}/v2/models/{NAME}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready in 900 s; see {log}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(120)
        self.log.close()
        return code


SEED_MODE = {"mode": "none"}


def body(i: int, k: int) -> dict:
    """A judge request; with --seed-mode distinct each carries its own seed. spct.serving.scoring
    runs one sampling call per distinct (temperature, seed), so distinct seeds measure requests
    that cannot share a generate call, whatever the batcher collects."""
    q, a, b = QUESTIONS[i % len(QUESTIONS)]
    inst = {"prompt": f"{q} (#{i})", "responses": [a, b], "k": k}
    if SEED_MODE["mode"] == "distinct":
        inst["seed"] = i
    return {"instances": [inst]}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def load_run(url: str, clients: int, per_client: int, k: int) -> dict:
    lat: list[float] = []
    errors: list[str] = []
    batches: list[int] = []

    def client(c: int) -> None:
        with httpx.Client(timeout=1800) as h:
            for j in range(per_client):
                t0 = time.perf_counter()
                r = h.post(f"{url}/v1/models/{NAME}:predict", json=body(c * 1000 + j, k))
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                else:
                    batches.append(r.json()["timings"]["batch_requests"])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    n = clients * per_client
    return {"requests": n, "errors": len(errors), "first_error": errors[:1], "wall_s": round(wall, 2),
            "throughput_rps": round(n / wall, 4), "p50_s": round(pct(lat, 50), 3), "p99_s": round(pct(lat, 99), 3),
            "mean_batch_requests": round(statistics.mean(batches), 2) if batches else 0}


def overhead_pairs(url: str, bundle: Path, runs: int, k: int, max_new_tokens: int) -> tuple[list[float], list[float], list[float]]:
    """Single requests through HTTP and the same judgments by a direct ``judge`` call, interleaved.

    Interleaving (server, direct, server, direct, ...) exposes both to the same
    background load; the set is sent twice and the second pass timed, so both
    paths run at shapes they have seen before.
    """
    from spct.engine import Engine, SamplingParams
    from spct.grm.judge import JudgeItem, judge
    from spct.types import user

    engine = Engine.load(str(bundle), device="cpu")
    params = SamplingParams(temperature=0.5, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
    served, direct, inside = [], [], []
    with httpx.Client(timeout=1800) as h:
        for timed in (False, True):
            for i in range(runs):
                b = body(50_000 + i, k)
                inst = b["instances"][0]
                t0 = time.perf_counter()
                r = h.post(f"{url}/v1/models/{NAME}:predict", json=b)
                t1 = time.perf_counter()
                r.raise_for_status()
                judge(engine, [JudgeItem([user(inst["prompt"])], inst["responses"], k=k)], params)
                t2 = time.perf_counter()
                if timed:
                    served.append(t1 - t0)
                    direct.append(t2 - t1)
                    # The library step as the server ran it (spct.grm.judge.judge), same request.
                    inside.append(r.json()["timings"]["generate_ms"] / 1000)
    return served, direct, inside


def fuzz_bodies(n: int, seed: int = 0):
    """(route, bytes, content-type) for n malformed requests."""
    rng = random.Random(seed)
    junk = [None, True, -1, 0, 33, 2**70, 1.5, "", "x" * 20_000, [], {}, [1, "a"], {"a": None}, "\u202e\x00"]
    v1_keys = ["prompt", "messages", "responses", "k", "k_meta", "temperature", "seed", "return_critiques", "bogus"]
    for i in range(n):
        kind = rng.random()
        if kind < 0.05:
            # Refused before use: over the 1 MB limit (413) or a wrong content type with a large body
            # (415); sent whole or chunked. Each must get its answer, never a connection reset.
            big = b'{"instances": [' + b"x" * rng.choice([1_000_001, 1_500_000, 3_000_000, 200_000])
            content = big if rng.random() < 0.5 else [big[j : j + 65_536] for j in range(0, len(big), 65_536)]
            ctype = "application/json" if len(big) > 1_000_000 else "text/plain"
            yield rng.choice([f"/v1/models/{NAME}:predict", f"/v2/models/{NAME}/infer", "/v1/completions",
                              "/v1/chat/completions", "/get_reward"]), content, ctype
            continue
        if kind < 0.4:
            b = body(i, 1)
            inst = b["instances"][0]
            if rng.random() < 0.3:
                inst.pop(rng.choice(sorted(inst)))
            else:
                inst[rng.choice(v1_keys)] = rng.choice(junk)
            if rng.random() < 0.1:
                b = {"instances": rng.choice(junk)}
            yield f"/v1/models/{NAME}:predict", json.dumps(b).encode(), "application/json"
        elif kind < 0.8:
            b = {"inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["q"]},
                            {"name": "responses", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}],
                 "parameters": {"k": 1}}
            t = b["inputs"][rng.randrange(2)]
            choice = rng.random()
            if choice < 0.3:
                t[rng.choice(["name", "shape", "datatype", "data", "parameters"])] = rng.choice(junk)
            elif choice < 0.5:
                t["shape"] = [rng.randint(-1, 4) for _ in range(rng.randint(0, 3))]
            elif choice < 0.7:
                b["parameters"][rng.choice(["k", "k_meta", "seed", "temperature", "x"])] = rng.choice(junk)
            elif choice < 0.85:
                b.pop(rng.choice(["inputs", "parameters"]))
                b.setdefault("inputs", [])
                if not b["inputs"]:
                    b.pop("inputs")
            else:
                b["outputs"] = rng.choice(junk)
            yield f"/v2/models/{NAME}/infer", json.dumps(b).encode(), "application/json"
        else:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
            if rng.random() < 0.3:
                raw = b'{"instances": [' * rng.randint(1, 3000)
            route = rng.choice([f"/v1/models/{NAME}:predict", f"/v2/models/{NAME}/infer"])
            yield route, raw, rng.choice(["application/json", "text/plain", None])


def fuzz_run(server: Server, n: int) -> dict:
    codes: dict[str, int] = {}
    crashes = 0
    unnamed = 0
    t0 = time.perf_counter()
    with httpx.Client(timeout=300) as h:
        for route, raw, ctype in fuzz_bodies(n):
            try:
                body = iter(raw) if isinstance(raw, list) else raw  # a list: sent chunked
                r = h.post(server.url + route, content=body, headers={"content-type": ctype} if ctype else {})
            except httpx.HTTPError:
                crashes += 1
                continue
            codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
            if 400 <= r.status_code < 500:
                try:
                    unnamed += not r.json().get("field")
                except ValueError:
                    unnamed += 1
    alive = server.proc.poll() is None
    return {"requests": n, "seconds": round(time.perf_counter() - t0, 1), "status_counts": dict(sorted(codes.items())),
            "5xx": sum(v for c, v in codes.items() if c.startswith("5")), "connection_failures": crashes,
            "server_alive_after": alive, "4xx_without_field": unnamed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo", help="engine spec or a local model directory")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=3, help="requests per client in the load runs (0 = skip them)")
    ap.add_argument("-k", type=int, default=1, help="samples per request")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--single-runs", type=int, default=6, help="sequential requests for the overhead comparison (0: skip it)")
    ap.add_argument("--fuzz", type=int, default=10_000)
    ap.add_argument("--fuzz-model", default="tiny",
                    help="model of the fuzzed server: validation does not depend on it, but the ~10%% of mutated "
                         "bodies that stay valid are judged, so a small model keeps the run short")
    ap.add_argument("--seed-mode", choices=("none", "distinct"), default="none",
                    help="none: requests leave seed out (the server's default, 0); distinct: request i sends seed=i")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    SEED_MODE["mode"] = args.seed_mode
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg()},
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "kserve", "spct")},
        "model": args.model, "clients": args.clients, "k": args.k, "max_new_tokens": args.max_new_tokens,
        "seed_mode": args.seed_mode,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = make_bundle(args.model, root, args.max_new_tokens)
        modes = (("batching", ()), ("no_batching", ("--no-batching",))) if args.requests else (("batching", ()),)
        for mode, flags in modes:
            srv = Server(bundle, root / f"{mode}.log", *flags)
            try:
                if args.requests:
                    load_run(srv.url, args.clients, 1, args.k)  # untimed warm pass: first-call costs of new shapes
                    result[mode] = load_run(srv.url, args.clients, args.requests, args.k)
                if mode == "batching" and args.single_runs:
                    served, direct, inside = overhead_pairs(srv.url, bundle, args.single_runs, args.k, args.max_new_tokens)
                    result["server_single_p50_s"] = round(statistics.median(served), 4)
                    result["direct_single_p50_s"] = round(statistics.median(direct), 4)
                    result["in_server_library_p50_s"] = round(statistics.median(inside), 4)
                    result["overhead_per_request"] = [round(a / b - 1, 4) for a, b in zip(served, inside)]

            finally:
                result[f"{mode}_exit_code"] = srv.stop()
            print(json.dumps({mode: result.get(mode)}), file=sys.stderr)
        if args.fuzz:
            fuzz_bundle = make_bundle(args.fuzz_model, root / "fuzz", 8) if args.fuzz_model != args.model else bundle
            srv = Server(fuzz_bundle, root / "fuzz.log")
            try:
                result["fuzz"] = {"model": args.fuzz_model, **fuzz_run(srv, args.fuzz)}
            finally:
                result["fuzz"]["exit_code"] = srv.stop()
    if args.requests:
        result["throughput_ratio"] = round(result["batching"]["throughput_rps"] / result["no_batching"]["throughput_rps"], 2)
    if args.single_runs:
        result["server_overhead_p50_vs_direct"] = round(result["server_single_p50_s"] / result["direct_single_p50_s"] - 1, 4)
        result["server_overhead_p50_vs_in_server_library"] = round(statistics.median(result["overhead_per_request"]), 4)
    result["machine"]["load_avg_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
