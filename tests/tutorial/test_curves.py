"""AR-init vs random-init curves: smoothing, steps-to-loss, the fresh twin, shared noise."""

import math

import pytest
import torch
from conftest import make_tiny_ar
from datasets import Dataset

from a2dkit import convert, tutorial
from a2dkit.training.config import MDLMConfig
from a2dkit.tutorial import curves


def test_moving_average_is_the_trailing_mean():
    assert curves.moving_average([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    assert curves.moving_average([4.0, 1.0, 1.0], 3) == [4.0, 2.5, 2.0]
    assert curves.moving_average([3.0, 1.0], 1) == [3.0, 1.0]


@pytest.mark.parametrize("window", [0, -1, 1.5])
def test_moving_average_rejects_a_bad_window(window):
    with pytest.raises(ValueError, match=f"window={window}"):
        curves.moving_average([1.0], window)


def test_steps_to_loss_is_one_based_and_none_when_never_reached():
    log = [5.0, 4.0, 3.0, 2.0]
    assert curves.steps_to_loss(log, 4.0) == 2
    assert curves.steps_to_loss(log, 5.0) == 1
    assert curves.steps_to_loss(log, 1.0) is None
    # trailing means with window 2: 5, 4.5, 3.5, 2.5
    assert curves.steps_to_loss(log, 3.0, window=2) == 4


def test_random_init_twin_has_the_architecture_but_not_the_weights(small_tokenizer):
    model = make_tiny_ar("qwen3", small_tokenizer)
    twin, again = curves.random_init_like(model, seed=1), curves.random_init_like(model, seed=1)
    assert type(twin) is type(model) and twin.config.to_dict() == model.config.to_dict()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in twin.state_dict().items()} == shapes
    weights = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(twin.state_dict()[weights], model.state_dict()[weights])
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in twin.state_dict().items())


def _rows(n: int = 32, length: int = 16) -> Dataset:
    ids = torch.randint(5, 250, (n, length), generator=torch.Generator().manual_seed(0))
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), max_steps=5, learning_rate=1e-2, save_strategy="no")
    base |= dict(use_cpu=True, seed=0, logging_steps=1, disable_tqdm=True, report_to="none")
    return MDLMConfig(**{**base, **kw, "per_device_train_batch_size": 8})


def test_equal_models_give_equal_curves_because_both_runs_share_batches_and_noise(
    fresh_tokenizer, tmp_path
):
    a2d, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", fresh_tokenizer), fresh_tokenizer)
    twin = curves.random_init_like(a2d, seed=3)
    twin.load_state_dict(a2d.state_dict())
    first = curves.train_losses(a2d, tok, _rows(), _args(tmp_path / "a"))
    torch.manual_seed(123)  # the trainer reseeds: the global RNG state before must not matter
    second = curves.train_losses(twin, tok, _rows(), _args(tmp_path / "b"))
    assert len(first) == 5 and all(math.isfinite(x) for x in first)
    assert first == second


def test_packed_rows_are_max_length_long_with_labels_equal_to_inputs(small_tokenizer):
    cfg = tutorial.get_scale("smoke")
    rows = curves.packed_rows(cfg, small_tokenizer)
    assert len(rows) > 0 and {len(r) for r in rows["input_ids"]} == {cfg.pretrain.max_length}
    assert rows["labels"][:8] == rows["input_ids"][:8]
    with pytest.raises(ValueError, match="split='dev'"):
        curves.packed_rows(cfg, small_tokenizer, split="dev")


def test_compare_inits_trains_both_inits_for_the_same_steps(tmp_path):
    curves_ = curves.compare_inits(tutorial.get_scale("smoke"), tmp_path, max_steps=3)
    assert list(curves_) == list(curves.INITS)
    assert all(len(log) == 3 and all(math.isfinite(x) for x in log) for log in curves_.values())
    assert curves_["ar_init"] != curves_["random_init"]  # same noise, different weights


@pytest.mark.parametrize("max_steps", [0, -5, 2.5])
def test_compare_inits_rejects_bad_max_steps(max_steps, tmp_path):
    with pytest.raises(ValueError, match=f"max_steps={max_steps}"):
        curves.compare_inits(tutorial.get_scale("smoke"), tmp_path, max_steps=max_steps)
