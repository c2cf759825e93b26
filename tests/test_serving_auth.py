"""Token loading and checking (the HTTP behaviour is tested against a live server in test_serving_openai.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spct.serving.auth import ENV_VAR, check, is_open, load_tokens

A, B = "a" * 20, "b-token-0123456789"


def test_tokens_from_flag_file_and_env(tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text(f"# rotated 2026-11\n{B}\n\n  {A}  \n")
    assert load_tokens(None, f, env={}) == (B, A)
    assert load_tokens(A, f, env={ENV_VAR: B}) == (A, B)  # duplicates collapse, order kept
    assert load_tokens(None, None, env={}) == ()
    assert load_tokens(None, None, env={ENV_VAR: f" {A}\n"}) == (A,)


@pytest.mark.parametrize("content, error", [("# only a comment\n", "holds no token"), ("short\n", "at least 16")])
def test_bad_token_files_are_refused(tmp_path: Path, content: str, error: str) -> None:
    f = tmp_path / "tokens"
    f.write_text(content)
    with pytest.raises(ValueError, match=error):
        load_tokens(None, f, env={})
    with pytest.raises(ValueError, match="cannot read"):
        load_tokens(None, tmp_path / "missing", env={})


def test_check() -> None:
    tokens = (A, B)
    assert check(f"Bearer {A}", tokens) is None and check(f"bearer  {B} ", tokens) is None
    assert check(None, tokens)[0] == 401 and check("", tokens)[0] == 401
    assert check(f"Basic {A}", tokens)[0] == 401 and check("Bearer", tokens)[0] == 401
    assert check(f"Bearer {A}x", tokens) == (403, "the token is not accepted")


def test_only_probes_and_metrics_are_open() -> None:
    for path in ("/", "/metrics", "/v2/health/live", "/v2/health/ready", "/v2/models/g/ready", "/v2/models/g/versions/1/ready",
                 "/v1/models/g"):
        assert is_open("GET", path), path
    for method, path in [("POST", "/v1/models/g:predict"), ("GET", "/v1/models"), ("GET", "/v2/models/g"),
                         ("POST", "/v1/completions"), ("GET", "/docs"), ("POST", "/metrics"), ("GET", "/v1/models/g:predict")]:
        assert not is_open(method, path), (method, path)
