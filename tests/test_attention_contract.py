"""The attention contract (a2dkit.testing) on every supported family, for sdpa and eager.

Users run the same checks on their own model: python -m a2dkit.testing --model_name_or_path DIR
"""

import pytest
from conftest import FAMILIES, make_tiny_ar

from a2dkit import convert, testing


@pytest.fixture(params=[(f, a) for f in FAMILIES for a in ("sdpa", "eager")], ids=str)
def pair(request, fresh_tokenizer):
    family, attn = request.param
    source = make_tiny_ar(family, fresh_tokenizer, attn)
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    return source, a2d


def test_padding_invariance(pair):
    result = testing.check_padding_invariance(pair[1])
    assert result.passed, result


def test_future_affects_past_while_source_stays_causal(pair):
    source, a2d = pair
    result = testing.check_future_affects_past(a2d, source)
    assert result.passed, result


def test_staircase_kv_cache_equivalence(pair):
    result = testing.check_staircase_kv_cache(pair[1])
    assert result.passed, result


def test_block_isolation_under_the_bd3lm_training_mask(pair):
    result = testing.check_block_isolation(pair[1])
    assert result.passed, result


def test_contract_fails_for_the_unconverted_ar_model(fresh_tokenizer):
    source = make_tiny_ar("qwen3", fresh_tokenizer)
    result = testing.check_future_affects_past(source)
    assert not result.passed and result.value <= 1e-6


def test_contract_fails_when_the_eager_bool_mask_is_ignored(fresh_tokenizer):
    """Sabotage: bypass the mask conversion under eager; block isolation must notice."""
    source = make_tiny_ar("llama", fresh_tokenizer, "eager")
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    raw_forward = type(a2d).__mro__[2].forward
    type(a2d).forward, saved = (lambda self, *a, **k: raw_forward(self, *a, **k)), type(a2d).forward
    try:
        assert not testing.check_block_isolation(a2d).passed
    finally:
        type(a2d).forward = saved


def test_cli_runs_the_contract_on_a_saved_model(tmp_path, fresh_tokenizer, capsys):
    source = make_tiny_ar("qwen2", fresh_tokenizer)
    a2d, tok, _ = convert.to_diffusion(source, fresh_tokenizer)
    a2d.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (
        testing.main(["--model_name_or_path", str(tmp_path), "--attn_implementation", "eager"]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("PASS") == 4 and "FAIL" not in out
