"""Generic conversion: named refusals, the contract as gate, sliding windows, lazy registration."""

import json
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig

from a2dkit import convert
from a2dkit.contract import family_gate, window
from a2dkit.contract.family_gate import run_generic_contract, tiny_pair
from a2dkit.models import families, forward


def _config(model_type: str, **kwargs):
    return AutoConfig.for_model(model_type, **kwargs)


@pytest.mark.parametrize(
    "model_type, reason",
    [
        ("bert", families.ENCODER_ONLY),
        ("bart", families.ENCODER_DECODER),
        ("mamba", families.RECURRENT),
        ("qwen3_next", families.LINEAR_HYBRID),
        ("bloom", families.OWN_MASK),
        ("openai-gpt", families.OWN_MASK),
    ],
)
def test_named_refusals(model_type, reason):
    verdict = convert.detect(_config(model_type))
    assert not verdict.supported
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons
    with pytest.raises(convert.UnsupportedModelError, match=reason.split("/")[0]):
        verdict.raise_if_unsupported()


def test_any_decoder_family_is_accepted_and_says_what_it_will_do():
    verdict = convert.detect(_config("olmo2"))
    assert verdict.supported and verdict.target_model_type == "a2d-olmo2"
    assert any("contract" in a for a in verdict.actions)
    sliding = convert.detect(_config("mistral", sliding_window=16))
    assert sliding.supported and any("sliding window (16" in a for a in sliding.actions)


def test_window_larger_than_context_gets_a_clear_verdict():
    config = _config("mistral", sliding_window=128, max_position_embeddings=64)
    verdict = convert.detect(config)
    assert verdict.supported  # the window never cuts a key: its layers are full attention
    assert any("sliding_window=128" in a and "full attention" in a for a in verdict.actions)
    assert not any("keep the sliding window" in a for a in verdict.actions)


@pytest.mark.parametrize("family", ["olmo2", "qwen3_moe", "gemma2", "cohere2"])
def test_contract_passes_in_float64(family):
    attn = "eager" if family == "gemma2" else "sdpa"  # gemma2 has no sdpa path
    results = run_generic_contract(*tiny_pair(_config(family), attn))
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert any(r.name == "sliding window" and "no sliding" not in r.detail for r in results) == (
        family in ("gemma2", "cohere2")
    )


# what each entry of family_gate.FAMILY_OVERRIDES must leave in the tiny instance
_SPECIAL_STRUCTURE = {
    "dbrx": lambda c: (c.attn_config.kv_n_heads, c.ffn_config.moe_top_k) == (2, 2),
    # a layer really reads another's K/V, and a Gaussian top-k (sparse) MLP runs
    "gemma3n_text": lambda c: (
        "reuse" in c.kv_sharing_modes and max(c.activation_sparsity_pattern) > 0
    ),
}


@pytest.mark.parametrize("family", sorted(_SPECIAL_STRUCTURE))
def test_special_cased_tiny_instances_keep_their_structure_and_pass(family):
    """dbrx (nested attn/ffn configs) and gemma3n_text (per-layer inputs, AltUp, KV sharing,
    activation sparsity) build from the override table and pass the same contract, in float64."""
    assert set(family_gate.FAMILY_OVERRIDES) == set(_SPECIAL_STRUCTURE)
    source, a2d = tiny_pair(_config(family), "sdpa")
    assert _SPECIAL_STRUCTURE[family](a2d.config), a2d.config
    results = run_generic_contract(source, a2d)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    window = next(r for r in results if r.name == "sliding window")
    assert ("window 4" in window.detail) == (family == "gemma3n_text"), window


def test_sdpa_without_kwargs_family_needs_the_module_flag():
    """stablelm calls attention without is_causal: left at module.is_causal=True, sdpa is causal."""
    source, a2d = tiny_pair(_config("stablelm"), "sdpa")
    for module in a2d.modules():
        if hasattr(module, "is_causal") and module is not a2d:
            module.is_causal = True  # undo A2DForwardMixin's fix: the negative control
    check = family_gate.check_future_every_layer(source, a2d)
    assert not check.passed and check.value <= family_gate.EXACT


def test_opt_gets_explicit_positions_with_4d_masks():
    _, a2d = tiny_pair(_config("opt"), "sdpa")
    ids = torch.randint(0, a2d.config.vocab_size, (1, 8))
    ones = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    with torch.no_grad():
        implicit = a2d(ids, attention_mask=ones).logits
        explicit = a2d(ids, attention_mask=ones, position_ids=torch.arange(8)[None]).logits
        shifted = a2d(ids, attention_mask=ones, position_ids=torch.arange(2, 10)[None]).logits
    assert torch.equal(implicit, explicit)
    assert (shifted - explicit).abs().max() > 1e-3  # positions matter, so the test can fail


@pytest.mark.parametrize("family", ["gemma3_text", "gemma3n_text"])  # (B, L, D) and AltUp streams
def test_sliding_window_check_catches_a_lost_window(monkeypatch, family):
    _, a2d = tiny_pair(_config(family), "sdpa")
    assert window.check_sliding_window(a2d).passed
    full_only = lambda mask, keys, pos, window, dtype, types: forward.to_additive_mask(mask, dtype)  # noqa: E731
    monkeypatch.setattr(forward, "_window_masks", full_only)
    lost = window.check_sliding_window(a2d)
    assert not lost.passed and lost.value > 1e-3, lost


def test_bd3lm_sampler_keeps_the_window_and_rewinds(small_tokenizer):
    import copy

    from a2dkit import samplers

    tok = copy.deepcopy(small_tokenizer)
    config = _config("mistral", sliding_window=4, vocab_size=320, max_position_embeddings=64)
    source, _ = tiny_pair(config, "sdpa")
    a2d, tok, _ = convert.to_diffusion(source.float(), tok)
    a2d = a2d.double()
    prompt = tok("ROMEO: But, soft!")["input_ids"][:4]
    runs = [
        samplers.BD3LMSampler(a2d, tok).sample(
            [prompt], max_new_tokens=12, block_size=4, steps=12, kv_cache=mode
        )
        for mode in ("reuse", "card")
    ]
    assert torch.equal(runs[0].sequences, runs[1].sequences)
    assert (runs[0].sequences[0, 4:] != tok.mask_token_id).all()
    assert family_gate.check_cache_rewind(a2d).passed


def test_sliding_cache_is_refused_with_the_fix():
    from transformers import DynamicCache

    _, a2d = tiny_pair(_config("gemma3_text"), "sdpa")
    with pytest.raises(ValueError, match="a2d_cache"):
        a2d(torch.zeros(1, 4, dtype=torch.long), past_key_values=DynamicCache(config=a2d.config))


def test_family_that_fails_the_contract_is_refused_with_the_number(monkeypatch):
    """stablelm with the sdpa fix undone builds but stays causal: the gate names check and value."""
    config = _config("stablelm")
    convert.contract_gate(config, "sdpa")  # passes as shipped
    original = forward.A2DForwardMixin.__init__

    def causal_init(self, config, *args, **kwargs):
        original(self, config, *args, **kwargs)
        for module in self.modules():
            if hasattr(module, "is_causal") and module is not self:
                module.is_causal = True

    monkeypatch.setattr(forward.A2DForwardMixin, "__init__", causal_init)
    pattern = r"contract failed.*sdpa: padding invariance|future affects past.* = [0-9.e+-]+"
    with pytest.raises(convert.UnsupportedModelError, match=pattern):
        convert.contract_gate(config, "sdpa")


def test_family_whose_contract_cannot_run_is_refused(monkeypatch):
    """bloom (own ALiBi causal mask) forced past its static refusal: refused, never converted."""
    monkeypatch.setattr(families, "static_refusals", lambda config: [])
    with pytest.raises(convert.UnsupportedModelError, match="contract failed.*could not run"):
        convert.contract_gate(_config("bloom"), "eager")


def test_sdpa_asked_of_a_family_without_sdpa():
    with pytest.raises(ValueError, match="no sdpa attention path.*eager"):
        families.check_attention_support("gemma2", "sdpa")
    families.check_attention_support("gemma2", "eager")


def test_remote_code_needs_the_flag(tmp_path):
    config = {"model_type": "my_lm", "auto_map": {"AutoConfig": "configuration_my.MyConfig"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="its own Python code.*--trust_remote_code True"):
        convert.detect(str(tmp_path))


def test_moe_family_trains_and_samples(small_tokenizer):
    import copy

    from a2dkit import samplers
    from a2dkit.diffusion import losses, masking

    tok = copy.deepcopy(small_tokenizer)
    source, _ = tiny_pair(_config("qwen3_moe", vocab_size=320), "sdpa")
    a2d, tok, _ = convert.to_diffusion(source.float(), tok)
    a2d.train()
    x0 = torch.randint(0, 300, (2, 16))
    maskable = torch.ones_like(x0, dtype=torch.bool)
    xt, masked = masking.mask_tokens(x0, torch.full((2, 16), 0.5), maskable, tok.mask_token_id)
    assert masked.any()
    router = next(p for n, p in a2d.named_parameters() if "gate" in n and "expert" not in n)
    optim = torch.optim.SGD(a2d.parameters(), lr=0.1)
    before = None
    for _ in range(3):
        logits = a2d(xt).logits
        loss = losses.masked_nll(logits, x0, masked).mean()
        optim.zero_grad()
        loss.backward()
        assert router.grad is not None and router.grad.abs().sum() > 0  # the router learns
        optim.step()
        before = loss.item() if before is None else before
    assert torch.isfinite(loss) and loss.item() < before
    a2d.eval()
    out = samplers.BD3LMSampler(a2d, tok).sample([[5, 6, 7, 8]], max_new_tokens=8, block_size=4)
    assert (out.sequences[0, out.gen_start :] != tok.mask_token_id).all()


def test_converted_gemma_loads_through_automodel_after_import(tmp_path, small_tokenizer):
    import copy

    tok = copy.deepcopy(small_tokenizer)
    source, _ = tiny_pair(_config("gemma", vocab_size=320), "sdpa")
    a2d, tok, _ = convert.to_diffusion(source.float(), tok)
    a2d.save_pretrained(tmp_path)
    ids = torch.arange(8)[None]
    with torch.no_grad():
        ref = a2d(ids).logits
    torch.save(ref, tmp_path / "ref.pt")
    code = (
        "import sys, torch, a2dkit; from transformers import AutoModelForMaskedLM as M;"
        "m = M.from_pretrained(sys.argv[1]).eval(); "
        "out = m(torch.arange(8)[None]).logits;"
        "ref = torch.load(sys.argv[1] + '/ref.pt');"
        "print(m.config.model_type, type(m).__name__, (out - ref).abs().max().item())"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    model_type, name, diff = run.stdout.split()[-3:]
    assert (model_type, name) == ("a2d-gemma", "A2DGemmaLMHeadModel") and float(diff) == 0.0


@pytest.mark.parametrize("family", ["phi3", "starcoder2", "mixtral"])
def test_families_with_an_optional_window_keep_it_when_set(family):
    results = run_generic_contract(*tiny_pair(_config(family, sliding_window=4096), "sdpa"))
    window = next(r for r in results if r.name == "sliding window")
    assert "window 4" in window.detail, window  # the check really ran on a sliding layer
    assert all(r.passed for r in results), [r for r in results if not r.passed]
