"""Profiles load, overrides apply with YAML types, and bad input names the field."""

import pytest

from spct.config import ConfigError, apply_overrides, load_profile


@pytest.mark.parametrize("name", ["tiny", "demo", "a100", "reproduce"])
def test_shipped_profiles_load(name):
    p = load_profile(name)
    assert p.name == name
    assert p.eval.ks == sorted(set(p.eval.ks))


def test_overrides_are_typed():
    p = load_profile("tiny", ["sampling.temperature=0.7", "eval.ks=[8,1,2]", "eval.greedy=false", "model.spec=demo"])
    assert p.sampling.temperature == 0.7 and p.eval.ks == [1, 2, 8] and p.eval.greedy is False
    assert p.model.spec == "demo"
    assert apply_overrides({}, ["a.b.c=3"]) == {"a": {"b": {"c": 3}}}


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="no profile named 'nope'"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="sampling.temperature"):
        load_profile("tiny", ["sampling.temperature=-1"])
    with pytest.raises(ConfigError, match="eval.bogus"):
        load_profile("tiny", ["eval.bogus=1"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_profile("tiny", ["nonsense"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(str(bad))


def test_a_profile_builds_on_its_base(tmp_path):
    demo = load_profile("demo")
    child = tmp_path / "longer.yaml"
    child.write_text("base: demo\nname: longer\ngrpo:\n  steps: 40\neval:\n  ks: [1, 8]\n")
    p = load_profile(str(child), ["grpo.lr=2e-5"])
    assert p.name == "longer" and p.grpo.steps == 40 and p.grpo.lr == 2e-5 and p.eval.ks == [1, 8]
    # everything the child does not name comes from the base, section by section
    assert p.grpo.group_size == demo.grpo.group_size and p.eval.data == demo.eval.data and p.model == demo.model
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\nname: loop\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_profile(str(loop))
    child.write_text("base: missing\n")
    with pytest.raises(ConfigError, match="no profile named 'missing'"):
        load_profile(str(child))
