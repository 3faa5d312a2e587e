"""The joint AR + diffusion loss (--ar_loss_weight α): L_NELBO + α · L_AR, where L_AR is the causal
next-token loss of the same weights, normalised like the NELBO (so it accumulates exactly)."""

import copy

import pytest
import torch
from conftest import make_tiny_ar
from test_trainers import _args, _dataset, _one_sgd_step, _PerExampleNoise, _trainer

from a2dkit import convert
from a2dkit.diffusion import losses
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.training.trainers import BD3LMTrainer


@pytest.fixture
def pair(fresh_tokenizer):
    """A tiny AR source and its fresh conversion, float64, in train mode (no dropout: tiny)."""
    source = make_tiny_ar("qwen3", fresh_tokenizer).double()
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), fresh_tokenizer)
    return source.eval(), a2d.double().train(), tok


def _loss(trainer, batch, seed=0):
    torch.manual_seed(seed)  # the same noise for every call
    return trainer.compute_loss(trainer.model, batch)


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_the_ar_term_is_the_source_models_next_token_loss(pair, tmp_path, algo):
    """A fresh conversion run causally is its source, so the added term equals the source's own
    summed next-token CE over the labelled tokens / the NELBO's denominator (float64)."""
    source, a2d, tok = pair
    cls, cfg = (BD3LMTrainer, BD3LMConfig) if algo == "bd3lm" else (None, MDLMConfig)
    kw = dict(block_size=4) if algo == "bd3lm" else {}
    rows = _dataset(4)
    batch = {k: torch.tensor(rows[k]) for k in ("input_ids", "labels")}
    plain = _trainer(a2d, tok, _args(tmp_path / "0", cfg, **kw), *([cls] if cls else []))
    joint = _trainer(a2d, tok, _args(tmp_path / "1", cfg, ar_loss_weight=0.7, **kw),
                     *([cls] if cls else []))  # fmt: skip
    added = _loss(joint, batch) - _loss(plain, batch)
    with torch.no_grad():
        logits = source(batch["input_ids"]).logits  # (B, L, V): the AR model itself
    ce = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), reduction="sum"
    )  # ignore_index -100: the prompt tokens
    denominator = (batch["labels"] != -100).sum()
    assert added.item() == pytest.approx(0.7 * (ce / denominator).item(), abs=1e-9)
    assert abs(added.item()) > 1e-3  # control: the term is not vacuous


def test_a_causal_clean_stream_gives_the_ar_term_from_the_same_forward(pair, tmp_path):
    """``--clean_stream causal`` (TiDAR): the x_0 half is token-causal, so the AR term is read from
    the diffusion forward itself and is still the source's next-token loss (float64, fresh
    conversion); the clean stream is recorded for the samplers; it changes the diffusion loss."""
    source, a2d, tok = pair
    rows = _dataset(4)
    batch = {k: torch.tensor(rows[k]) for k in ("input_ids", "labels")}

    def trainer(name, **kw):
        args = _args(tmp_path / name, BD3LMConfig, block_size=4, **kw)
        return _trainer(copy.deepcopy(a2d), tok, args, BD3LMTrainer)

    plain, joint = trainer("p", clean_stream="causal"), trainer("j", clean_stream="causal",
                                                                 ar_loss_weight=0.7)  # fmt: skip
    calls = []
    joint.model.register_forward_hook(lambda *_: calls.append(1))
    added = _loss(joint, batch) - _loss(plain, batch)
    assert len(calls) == 1  # one forward: no causal forward of its own
    with torch.no_grad():
        logits = source(batch["input_ids"]).logits
    ce = losses.next_token_nll(logits, batch["labels"])
    denominator = (batch["labels"] != -100).sum()
    assert added.item() == pytest.approx(0.7 * (ce / denominator).item(), abs=1e-9)
    assert joint.model.config.a2d_clean_stream == "causal"
    assert joint.model.config.a2d_recipe["clean_stream"] == "causal"
    block = trainer("b")
    assert block.model.config.a2d_clean_stream == "block"
    assert abs(_loss(block, batch).item() - _loss(plain, batch).item()) > 1e-3  # control
    with pytest.raises(ValueError, match="clean_stream='sideways'.*block.*causal"):
        _args(tmp_path / "x", BD3LMConfig, block_size=4, clean_stream="sideways")


def test_off_by_default_and_the_weight_is_recorded_in_the_checkpoint(pair, tmp_path):
    _, a2d, tok = pair
    rows = _dataset(4)
    batch = {k: torch.tensor(rows[k]) for k in ("input_ids", "labels")}
    default = _trainer(copy.deepcopy(a2d), tok, _args(tmp_path / "d"))
    zero = _trainer(copy.deepcopy(a2d), tok, _args(tmp_path / "z", ar_loss_weight=0.0))
    assert torch.equal(_loss(default, batch), _loss(zero, batch))  # bit for bit: the same path
    joint = _trainer(a2d, tok, _args(tmp_path / "j", ar_loss_weight=0.5))
    assert joint.model.config.ar_loss_weight == 0.5 and default.model.config.ar_loss_weight == 0.0


def test_gradient_accumulation_does_not_change_the_joint_update(pair, tmp_path):
    _, a2d, tok = pair
    a2d = a2d.float()

    class Joint(_PerExampleNoise):
        def __init__(self, *a, **kw):
            kw["args"].ar_loss_weight = 0.5
            super().__init__(*a, **kw)

    full = _one_sgd_step(a2d, tok, tmp_path / "1x8", Joint, 8, 1, "token")
    accumulated = _one_sgd_step(a2d, tok, tmp_path / "4x2", Joint, 2, 4, "token")
    assert torch.allclose(full, accumulated, atol=1e-6)
    plain = _one_sgd_step(a2d, tok, tmp_path / "plain", _PerExampleNoise, 8, 1, "token")
    assert not torch.allclose(full, plain, atol=1e-4)  # control: the AR term moved the update


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_a_negative_or_non_finite_weight_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match=r"ar_loss_weight=.* must be a finite number >= 0"):
        MDLMConfig(output_dir=str(tmp_path), ar_loss_weight=bad)


def test_next_token_nll_checks_its_shapes():
    with pytest.raises(ValueError, match="disagree"):
        losses.next_token_nll(torch.zeros(2, 4, 8), torch.zeros(2, 3, dtype=torch.long))
