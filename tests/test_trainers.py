"""MDLM/BD3LM trainers on the real HF Trainer: GA invariance, exact resume, preemption, learning."""

import os
import signal

import pytest
import torch
from conftest import make_tiny_ar
from datasets import Dataset
from transformers import TrainerCallback

from a2dkit import convert, losses, masking, preprocess
from a2dkit.config import BD3LMConfig, MDLMConfig, resolve_resume_checkpoint
from a2dkit.trainers import BD3LMTrainer, MDLMTrainer, PreemptionCallback

SEQ = 16


@pytest.fixture
def a2d(fresh_tokenizer):
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", fresh_tokenizer), fresh_tokenizer)
    return model.train(), tok


def _dataset(n: int = 8, seed: int = 0) -> Dataset:
    """Rows with a varying number of prompt tokens (label -100), so normalisation matters."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 250, (n, SEQ), generator=gen)
    labels = ids.clone()
    for i in range(n):
        labels[i, : 2 * (i % 4)] = -100
    return Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})


def _args(tmp_path, cls=MDLMConfig, **kw):
    base = dict(
        output_dir=str(tmp_path),
        max_steps=4,
        learning_rate=1e-2,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
        logging_steps=1,
        disable_tqdm=True,
    )
    return cls(**{**base, **kw})


def _trainer(model, tok, args, cls=MDLMTrainer, callbacks=()):
    collator = preprocess.DiffusionCollator(tok)
    return cls(
        model=model,
        args=args,
        train_dataset=_dataset(),
        data_collator=collator,
        processing_class=tok,
        callbacks=list(callbacks),
    )


class _PerExampleNoise(MDLMTrainer):
    """Noise drawn from each example's own seed, so 1x8 and 4x2 see identical masks."""

    def _noise(self, x0, maskable):
        ts, xts, masks = [], [], []
        for row, keep in zip(x0, maskable, strict=True):
            gen = torch.Generator().manual_seed(int(row[-1]) * 7919 + int(row[-2]))
            t = masking.sample_t(1, eps=1e-3, generator=gen)
            xt, masked = masking.mask_tokens(row[None], t, keep[None], self.mask_token_id, gen)
            ts.append(t), xts.append(xt), masks.append(masked)
        return torch.cat(ts), torch.cat(xts), torch.cat(masks)


class _PerMicroBatchNorm(_PerExampleNoise):
    """The dLLM reference behaviour: normalise per micro-batch (the bug we fix)."""

    def _get_num_items_in_batch(self, batch_samples, device):
        return None


def _one_step(model, tok, tmp_path, cls, batch, accum, norm):
    model = _clone(model)
    args = _args(
        tmp_path / f"{batch}x{accum}",
        max_steps=1,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accum,
        optim="sgd",
        learning_rate=1.0,
        loss_norm_type=norm,
        max_grad_norm=0.0,
    )
    _trainer(model, tok, args, cls).train()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _clone(model):
    import copy

    return copy.deepcopy(model)


@pytest.mark.parametrize("norm", ["token", "sequence", "batch"])
def test_gradient_accumulation_does_not_change_the_update(a2d, tmp_path, norm):
    model, tok = a2d
    full = _one_step(model, tok, tmp_path, _PerExampleNoise, 8, 1, norm)
    accumulated = _one_step(model, tok, tmp_path, _PerExampleNoise, 2, 4, norm)
    assert torch.allclose(full, accumulated, atol=1e-6)
    reference_bug = _one_step(model, tok, tmp_path, _PerMicroBatchNorm, 2, 4, norm)
    assert not torch.allclose(full, reference_bug, atol=1e-4)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


class _SignalAt(TrainerCallback):
    """Sends SIGUSR1 to this process at the end of step ``k`` (as Slurm's warning would)."""

    def __init__(self, k):
        self.k = k

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.k:
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.parametrize(
    "trainer_cls, config_cls", [(MDLMTrainer, MDLMConfig), (BD3LMTrainer, BD3LMConfig)]
)
def test_preempted_and_resumed_run_equals_the_uninterrupted_one(
    a2d, tmp_path, trainer_cls, config_cls
):
    model, tok = a2d
    extra = {"block_size": 4} if config_cls is BD3LMConfig else {}
    straight = _clone(model)
    _trainer(straight, tok, _args(tmp_path / "a", config_cls, **extra), trainer_cls).train()

    args = _args(tmp_path / "b", config_cls, save_strategy="steps", save_steps=100, **extra)
    preemption = PreemptionCallback()
    first = _trainer(_clone(model), tok, args, trainer_cls, [_SignalAt(2), preemption])
    first.train()
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    assert preemption.received == signal.SIGUSR1 and first.state.global_step == 2
    resume = resolve_resume_checkpoint(args.output_dir, "auto")
    assert resume.endswith("checkpoint-2")

    resumed = _clone(model)
    _trainer(resumed, tok, args, trainer_cls).train(resume_from_checkpoint=resume)
    for a, b in zip(_params(straight), _params(resumed), strict=True):
        assert torch.equal(a, b)


def _fixed_eval_loss(model, x0, mask_id, ts=(0.2, 0.5, 0.8)):
    """MDLM loss on fixed (t, mask) draws: comparable before and after training."""
    gen, total = torch.Generator().manual_seed(123), 0.0
    maskable = torch.ones_like(x0, dtype=torch.bool)
    with torch.no_grad():
        for t in ts:
            t_vec = torch.full((len(x0),), t)
            xt, masked = masking.mask_tokens(x0, t_vec, maskable, mask_id, gen)
            logits = model(xt).logits
            total += losses.mdlm_loss(logits, x0, masked, maskable, 1 / t_vec).item()
    return total / len(ts)


def test_brief_mdlm_training_lowers_the_mdlm_loss(a2d, tmp_path):
    model, tok = a2d
    x0 = torch.tensor(_dataset()["input_ids"])
    before = _fixed_eval_loss(model.eval(), x0, tok.mask_token_id)
    _trainer(model.train(), tok, _args(tmp_path, max_steps=30, learning_rate=3e-3)).train()
    after = _fixed_eval_loss(model.eval(), x0, tok.mask_token_id)
    assert after < 0.8 * before


def test_trainer_refuses_a_model_without_mask_token(fresh_tokenizer, tmp_path):
    model = make_tiny_ar("qwen3", fresh_tokenizer)
    with pytest.raises(ValueError, match="no mask token"):
        _trainer(model, fresh_tokenizer, _args(tmp_path))


def test_bd3lm_trainer_refuses_flash_attention(a2d, tmp_path):
    model, tok = a2d
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="flash_attention_2.*causal-only"):
        _trainer(model, tok, _args(tmp_path, BD3LMConfig, block_size=4), BD3LMTrainer)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss_norm_type": "tokens"}, "loss_norm_type='tokens'"),
        ({"loss_weight_type": "flat"}, "loss_weight_type='flat'"),
        ({"time_epsilon": 1.0}, "time_epsilon=1.0"),
        ({"alpha_schedule": "cubic"}, "alpha_schedule='cubic'"),
    ],
)
def test_config_validation_names_the_bad_value(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MDLMConfig(output_dir=str(tmp_path), **kwargs)


def test_bd3lm_config_rejects_non_positive_block_size(tmp_path):
    with pytest.raises(ValueError, match="block_size=0"):
        BD3LMConfig(output_dir=str(tmp_path), block_size=0)


def test_resume_auto_picks_the_latest_checkpoint(tmp_path):
    assert resolve_resume_checkpoint(tmp_path, "auto") is None
    for step in (5, 20, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-final").mkdir()
    assert resolve_resume_checkpoint(tmp_path, "auto").endswith("checkpoint-100")
    assert resolve_resume_checkpoint(tmp_path, None) is None
    with pytest.raises(ValueError, match="not a directory"):
        resolve_resume_checkpoint(tmp_path, str(tmp_path / "nope"))
