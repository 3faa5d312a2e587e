"""Conversion: verdicts, bit-identical weights, mask token, identity gate, Auto classes, errors."""

import json

import pytest
import torch
import transformers
from conftest import FAMILIES, make_tiny_ar
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

import a2dkit
from a2dkit import convert
from a2dkit.cli import convert as cli_convert
from a2dkit.tutorial import tiny


@pytest.fixture
def source_dir(tmp_path, small_tokenizer):
    """A tiny AR Qwen3 checkpoint on disk (safetensors + tokenizer)."""
    path = tmp_path / "source"
    make_tiny_ar("qwen3", small_tokenizer).save_pretrained(path)
    small_tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_detect_supports_each_family_from_config_alone(family):
    verdict = convert.detect(tiny.tiny_config(family))
    assert verdict.supported and verdict.reasons == []
    assert verdict.target_model_type == f"a2d-{family}"


@pytest.mark.parametrize(
    "config, reason",
    [
        (transformers.T5Config(), "encoder-decoder"),
        (transformers.BartConfig(), "encoder-decoder"),
        (transformers.BertConfig(), "encoder-only"),
        (transformers.MambaConfig(), "state-space"),
        (tiny.tiny_config("qwen3", is_causal=False), "already non-causal"),
        (transformers.BloomConfig(), "own causal-mask code"),
        (transformers.Qwen3NextConfig(), "hybrid layers (linear_attention)"),
    ],
)
def test_detect_refuses_with_named_reasons(config, reason):
    verdict = convert.detect(config)
    assert not verdict.supported and any(reason in r for r in verdict.reasons)
    with pytest.raises(convert.UnsupportedModelError, match=rf"model_type='{config.model_type}'"):
        verdict.raise_if_unsupported()


@pytest.mark.parametrize(
    "config", [tiny.tiny_config("mistral", sliding_window=16), transformers.PhiConfig()]
)
def test_detect_leaves_other_decoder_families_to_the_contract(config):
    verdict = convert.detect(config)  # once refused by a list; now the contract decides
    assert verdict.supported and verdict.target_model_type == f"a2d-{config.model_type}"


def test_flash_attention_is_refused():
    config = tiny.tiny_config("qwen3")
    config._attn_implementation = "flash_attention_2"
    assert any("causal-only" in r for r in convert.detect(config).reasons)


def test_convert_writes_bit_identical_weights_mask_token_and_manifest(source_dir, tmp_path):
    out = convert.convert(source_dir, tmp_path / "a2d")
    src, dst = load_file(source_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert src.keys() == dst.keys()
    assert all(torch.equal(src[k], dst[k]) for k in src)
    config = AutoConfig.from_pretrained(out)
    assert config.model_type == "a2d-qwen3" and config.is_causal is False
    manifest = json.loads((out / "a2d_manifest.json").read_text())
    assert manifest["identity_gate"]["passed"] and manifest["identity_gate"]["max_abs_diff"] <= 1e-5
    assert manifest["reused_spare_row"] is True
    assert len(manifest["source"]["sha256"]) == 64


def test_converted_checkpoint_loads_with_auto_classes(source_dir, tmp_path):
    out = convert.convert(source_dir, tmp_path / "a2d")
    tok = transformers.AutoTokenizer.from_pretrained(out)
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ == "A2DQwen3LMHeadModel"
    assert tok.mask_token == "<|mask|>"
    assert tok.mask_token_id < model.get_input_embeddings().weight.shape[0]
    assert type(AutoModel.from_pretrained(out)).__name__ == "A2DQwen3Model"


def test_mask_token_resizes_embeddings_when_no_spare_row(fresh_tokenizer):
    model = tiny.tiny_model("llama", vocab_size=len(fresh_tokenizer))  # no spare row
    a2d, tok, info = convert.to_diffusion(model, fresh_tokenizer)
    assert info["reused_spare_row"] is False
    assert a2d.get_input_embeddings().weight.shape[0] == len(tok) > tok.mask_token_id
    old = model.get_input_embeddings().weight
    assert torch.equal(a2d.get_input_embeddings().weight[: len(old)], old)


def test_the_added_mask_row_is_deterministic(small_tokenizer):
    """The row a resize adds is the mean of the others, so two conversions are bit-identical
    (a random row made a run converted in memory differ from one of a converted checkpoint)."""
    import copy

    def convert_once(seed: int):
        torch.manual_seed(seed)  # the global RNG a random row would draw from
        model = tiny.tiny_model("llama", vocab_size=len(small_tokenizer))  # no spare row
        a2d, tok, _ = convert.to_diffusion(model, copy.deepcopy(small_tokenizer))
        return a2d.get_input_embeddings().weight, a2d.get_output_embeddings().weight, tok

    (emb1, out1, tok), (emb2, out2, _) = convert_once(1), convert_once(2)
    assert torch.equal(emb1, emb2) and torch.equal(out1, out2)
    mask = tok.mask_token_id
    assert torch.allclose(emb1[mask], emb1[:mask].mean(0), atol=1e-7)
    assert torch.allclose(out1[mask], out1[:mask].mean(0), atol=1e-7)
    assert not torch.equal(emb1[mask], torch.zeros_like(emb1[mask]))  # control: a real row


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_identity_gate_passes_for_every_family(family, attn, fresh_tokenizer):
    source = make_tiny_ar(family, fresh_tokenizer, attn)
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    gate = convert.identity_gate(source, a2d, convert.gate_batch(source.config.vocab_size))
    assert gate["passed"], gate


def test_identity_gate_detects_a_changed_weight(fresh_tokenizer):
    source = make_tiny_ar("qwen3", fresh_tokenizer)
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    with torch.no_grad():
        a2d.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-2
    gate = convert.identity_gate(source, a2d, convert.gate_batch(source.config.vocab_size))
    assert not gate["passed"] and gate["max_abs_diff"] > 1e-5


def test_bool_mask_is_honoured_under_eager(fresh_tokenizer):
    """eager *adds* a bool mask to the scores; our forward converts it, so a causal mask bites."""
    source = make_tiny_ar("qwen3", fresh_tokenizer, "eager")
    a2d, _, _ = convert.to_diffusion(source, fresh_tokenizer)
    x = convert.gate_batch(source.config.vocab_size, batch=1, seq_len=8)
    causal = torch.tril(torch.ones(8, 8, dtype=torch.bool))[None, None]
    with torch.no_grad():
        ours = a2d(x, attention_mask=causal).logits
        raw = type(a2d).__mro__[2].forward(a2d, x, attention_mask=causal).logits  # bypass mixin
        ref = source(x).logits
    assert (ours - ref).abs().max() <= 1e-5
    assert (raw - ref).abs().max() > 1e-3  # the silent bug we guard against


def test_cli_converts_and_detect_only_reports(source_dir, tmp_path, capsys):
    assert cli_convert.main(["--model_name_or_path", str(source_dir), "--detect_only", "True"]) == 0
    assert "supported" in capsys.readouterr().out
    out = tmp_path / "cli"
    assert (
        cli_convert.main(["--model_name_or_path", str(source_dir), "--output_dir", str(out)]) == 0
    )
    assert (out / "a2d_manifest.json").exists()


# --- bad input: one clear error each, before any heavy work -------------------------------------


def test_unknown_path_offline_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"model path 'no-such/model' not found.*offline"):
        convert.convert("no-such/model", tmp_path / "out")


def test_unsupported_architecture_is_refused_on_disk(tmp_path):
    transformers.BertConfig().save_pretrained(tmp_path / "bert")
    with pytest.raises(a2dkit.UnsupportedModelError, match=r"model_type='bert'.*encoder-only"):
        convert.convert(tmp_path / "bert", tmp_path / "out")


def test_tokenizer_without_eos_is_refused(source_dir, tmp_path):
    config = json.loads((source_dir / "tokenizer_config.json").read_text())
    config["eos_token"] = None
    (source_dir / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="no eos_token"):
        convert.convert(source_dir, tmp_path / "out")


def test_non_empty_output_dir_needs_overwrite(source_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match=r"output_dir=.*not empty.*--overwrite"):
        convert.convert(source_dir, tmp_path / "out")
    assert convert.convert(source_dir, tmp_path / "out", overwrite=True).exists()


def test_pickle_checkpoint_needs_explicit_opt_in(source_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(source_dir)
    (source_dir / "model.safetensors").unlink()
    torch.save(model.state_dict(), source_dir / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pickle weights.*--allow_pickle_weights"):
        convert.convert(source_dir, tmp_path / "out")
