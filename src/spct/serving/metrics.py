"""Prometheus metrics, served by KServe's ``/metrics`` endpoint (the default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("spct_requests", "Judge requests answered, by protocol and HTTP status", ["protocol", "code"])
LATENCY = Histogram(
    "spct_request_seconds", "Judge request latency (validation to answer)", ["protocol"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
GENERATED_TOKENS = Counter("spct_generated_tokens", "Tokens the GRM generated")
PARSE_FAILURES = Counter("spct_parse_failures", "Sampled critiques without a usable score list", ["reason"])
BATCH_REQUESTS = Histogram("spct_batch_requests", "HTTP requests coalesced into one sampling batch",
                           buckets=(1, 2, 4, 8, 16, 32, 64))
BATCH_SAMPLES = Histogram("spct_batch_samples", "Critiques sampled in one batch", buckets=(1, 4, 8, 16, 32, 64, 128, 256, 512))
QUEUE_DEPTH = Gauge("spct_queue_depth", "Requests waiting for the sampler")
IN_FLIGHT = Gauge("spct_requests_in_flight", "Judge requests being validated, queued or judged")
