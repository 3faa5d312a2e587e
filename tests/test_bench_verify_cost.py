"""bench/bench_verify_cost.py at minimal sizes on the smoke source, converted: one row per draft
shape with the column count of one-pass's forward, and the bars derived from the timings."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_verify_cost")


def test_rows_follow_the_one_pass_layout(bench, tmp_path):
    out = tmp_path / "cost.json"
    result = bench.main(["--scale", "smoke", "--shapes", "1x1,1x4,3x1", "--past", "8",
                         "--new_tokens", "16", "--repeats", "3", "--json", str(out)])  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["generate_ms_per_token"] > 0 and result["step_ms"] > 0
    rows = result["rows"]
    assert [(r["draft_length"], r["candidates"]) for r in rows] == [(1, 1), (1, 4), (3, 1)]
    # (k + m)(k + 2) columns: the verified tokens, then a block of k + 1 masks after each
    assert [r["columns"] for r in rows] == [6, 15, 20]
    # the LM head on the rows the decoder reads: k + m verifying rows and k from each block
    assert [r["head_rows"] for r in rows] == [4, 10, 16]
    for r in rows:
        assert r["ms"] > 0 and r["most"] == r["draft_length"] + 1
        assert r["x_step"] == pytest.approx(r["ms"] / result["step_ms"])
        assert r["needed"] == pytest.approx(1.3 * r["ms"] / result["generate_ms_per_token"])


@pytest.mark.parametrize("shapes", ["0x1", "1x0", "1", "ax2", "1x2,3"])
def test_a_bad_shape_is_refused(bench, shapes, capsys):
    with pytest.raises(SystemExit):
        bench.parse(["--shapes", shapes])
    assert shapes.split(",")[-1] in capsys.readouterr().err or "KxM" in capsys.readouterr().err


def test_a_random_model_of_a_named_size(bench, monkeypatch):
    """``--size``: a randomly initialised model of a named size's dims (no download); with
    ``--linears``, its linear layers timed alone."""
    dims = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                tie_word_embeddings=True, max_position_embeddings=128)  # fmt: skip
    monkeypatch.setitem(bench.SIZES, "test-tiny", dims)
    result = bench.main(["--size", "test-tiny", "--device", "cpu", "--shapes", "2x1", "--past",
                         "4", "--new_tokens", "8", "--repeats", "2", "--linears"])  # fmt: skip
    assert result["model"] == "test-tiny" and result["dtype"] == "torch.float32"
    assert [r["columns"] for r in result["rows"]] == [12]
    # --linears: 1, 2, 3 input rows and each shape's width
    assert [r["rows"] for r in result["linears"]] == [1, 2, 3, 12]
    assert all(r["linear_ms"] > 0 and r["transposed_ms"] > 0 for r in result["linears"])


def test_the_qwen3_size_has_the_published_parameter_counts(bench):
    """Qwen/Qwen3-0.6B's model card: 0.6B parameters, 0.44B of them non-embedding (meta device:
    no memory)."""
    from a2dkit.models import registry

    registry.register_all()
    config = registry.A2D_CONFIGS["a2d-qwen3"](**bench.SIZES["qwen3-0.6b"], mask_token_id=0)
    with torch.device("meta"):
        model = registry.A2D_MODELS["a2d-qwen3"](config)
    total = sum(p.numel() for p in model.parameters())  # the tied head counted once
    embedding = model.get_input_embeddings().weight.numel()
    assert 0.59e9 < total < 0.61e9 and 0.435e9 < total - embedding < 0.445e9, (total, embedding)


def test_model_and_size_together_are_refused(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse(["--model", "x", "--size", "qwen3-0.6b"])
    assert "give one of them" in capsys.readouterr().err
