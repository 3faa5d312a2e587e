"""The attention contract (a2dkit.contract.checks) on every supported family, for sdpa and eager.

Users run the same checks on their own model: python -m a2dkit.contract --model_name_or_path DIR
"""

import pytest
import torch
from conftest import FAMILIES, make_tiny_ar

from a2dkit import convert
from a2dkit.cli import contract as cli_contract
from a2dkit.contract import checks, probes
from a2dkit.contract.result import max_diff


@pytest.fixture(params=[(f, a) for f in FAMILIES for a in ("sdpa", "eager")], ids=str)
def pair(request, fresh_tokenizer):
    family, attn = request.param
    source = make_tiny_ar(family, fresh_tokenizer, attn)
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    return checks.as_dtype(source, torch.float64), checks.as_dtype(a2d, torch.float64)


def test_padding_invariance(pair):
    result = checks.check_padding_invariance(pair[1])
    assert result.passed, result


def test_future_affects_past_while_source_stays_causal(pair):
    source, a2d = pair
    result = checks.check_future_affects_past(a2d, source)
    assert result.passed, result


def test_staircase_kv_cache_equivalence(pair):
    result = checks.check_staircase_kv_cache(pair[1])
    assert result.passed, result


def test_block_isolation_under_the_bd3lm_training_mask(pair):
    result = checks.check_block_isolation(pair[1])
    assert result.passed, result


def test_contract_fails_for_the_unconverted_ar_model(fresh_tokenizer):
    source = make_tiny_ar("qwen3", fresh_tokenizer)
    result = checks.check_future_affects_past(source)
    assert not result.passed and result.value <= 1e-6


def test_contract_fails_when_the_eager_bool_mask_is_ignored(fresh_tokenizer):
    """Sabotage: bypass the mask conversion under eager; block isolation must notice."""
    source = make_tiny_ar("llama", fresh_tokenizer, "eager")
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    raw_forward = type(a2d).__mro__[2].forward
    type(a2d).forward, saved = (lambda self, *a, **k: raw_forward(self, *a, **k)), type(a2d).forward
    try:
        assert not checks.check_block_isolation(a2d).passed
    finally:
        type(a2d).forward = saved


def test_cli_runs_the_contract_on_a_saved_model(tmp_path, fresh_tokenizer, capsys):
    source = make_tiny_ar("qwen2", fresh_tokenizer)
    a2d, tok, _ = convert.to_diffusion(source, fresh_tokenizer)
    a2d.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (
        cli_contract.main(["--model_name_or_path", str(tmp_path), "--attn_implementation", "eager"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("PASS") == 4 and "FAIL" not in out


def test_run_contract_checks_a_float64_copy_and_leaves_the_model_alone(fresh_tokenizer):
    source = make_tiny_ar("llama", fresh_tokenizer)
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    results = checks.run_contract(a2d, source=source)
    assert all(r.passed for r in results) and {r.threshold for r in results} == {1e-6}
    assert a2d.dtype == torch.float32 and source.dtype == torch.float32


def test_one_causal_layer_at_the_top_fails_future_affects_past(fresh_tokenizer):
    """The token probe alone misses it (layer 1 already mixed the future in); the per-layer
    probe of each layer's own input names the causal layer."""
    source = make_tiny_ar("qwen3", fresh_tokenizer)
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    a2d = checks.as_dtype(a2d, torch.float64)
    top = probes.decoder_layers(a2d)[-1]
    forward = top.forward

    def causal_forward(hidden_states, *args, **kwargs):
        n = hidden_states.shape[1]
        causal = torch.full((n, n), torch.finfo(torch.float64).min, dtype=torch.float64).triu(1)
        return forward(hidden_states, *args, **{**kwargs, "attention_mask": causal[None, None]})

    top.forward = causal_forward
    result = checks.check_future_affects_past(a2d)
    assert not result.passed and result.value == 0.0
    assert result.detail == f"weakest: layer {len(probes.decoder_layers(a2d))} own input"


def test_decoder_layers_are_found_for_every_family(fresh_tokenizer):
    for family in FAMILIES:
        model = make_tiny_ar(family, fresh_tokenizer)
        layers = probes.decoder_layers(model)
        assert len(layers) == model.config.num_hidden_layers
        outs = probes.layer_outputs(model, torch.tensor([[1, 2, 3]]))
        hidden = probes.hidden_states_per_layer(model, torch.tensor([[1, 2, 3]]))
        assert len(outs) == len(layers) and torch.equal(outs[0], hidden[0])


def test_cli_exits_1_with_a_numbered_fail_line(tmp_path, fresh_tokenizer, capsys):
    source = make_tiny_ar("llama", fresh_tokenizer)
    a2d, tok, _ = convert.to_diffusion(source, fresh_tokenizer)
    a2d.config.is_causal = True  # a conversion left causal
    a2d.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    argv = ["--model_name_or_path", str(tmp_path), "--dtype", "float32", "--bd3lm", "False"]
    assert cli_contract.main(argv) == 1
    out = capsys.readouterr().out
    assert "1. PASS  padding invariance" in out and "2. FAIL  future affects past" in out
    assert "(sdpa, float32)" in out and "threshold 0.002" in out


def test_a_nan_in_the_logits_fails_the_check_instead_of_hiding(fresh_tokenizer):
    """Eager attention in a causal model gives fully masked left-pad rows NaN, and 0 x NaN then
    reaches the real rows; max() over a NaN difference used to pick another variant (a pass)."""
    source = checks.as_dtype(make_tiny_ar("llama", fresh_tokenizer, "eager"), torch.float64)
    result = checks.check_padding_invariance(source)
    assert not result.passed and result.value == float("inf"), result
    assert max_diff(torch.tensor([float("nan"), 0.0]), torch.zeros(2)) == float("inf")
    assert max_diff(torch.tensor([1.5]), torch.tensor([1.0])) == 0.5  # control
