"""MDLM/BD3LM trainers on the real HF Trainer: GA invariance, exact resume, preemption, learning."""

import copy
import json
import os
import signal
import subprocess

import pytest
import torch
from conftest import make_tiny_ar
from datasets import Dataset
from safetensors.torch import load_file
from transformers import Trainer, TrainerCallback, TrainingArguments

from a2dkit import convert
from a2dkit.data import preprocess, shakespeare
from a2dkit.diffusion import attention, blocks, losses, masking
from a2dkit.training import checkpoints
from a2dkit.training.checkpoints import resolve_resume_checkpoint
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.training.resumable import PreemptionCallback
from a2dkit.training.trainers import BD3LMTrainer, MDLMTrainer, maskable_positions

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
    base = dict(output_dir=str(tmp_path), max_steps=4, learning_rate=1e-2, save_strategy="no")
    base |= dict(use_cpu=True, seed=0, logging_steps=1, disable_tqdm=True)
    return cls(**{**base, **kw})


def _trainer(model, tok, args, cls=MDLMTrainer, callbacks=(), data=None, **kw):
    return cls(
        model=model,
        args=args,
        train_dataset=_dataset() if data is None else data,
        data_collator=preprocess.DiffusionCollator(tok),
        processing_class=tok,
        callbacks=list(callbacks),
        **kw,
    )


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class _PerExampleNoise(MDLMTrainer):
    """Noise drawn from each example's own seed, so 1x8 and 4x2 see identical masks."""

    def sample_noise(self, x0, maskable):
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


def _one_sgd_step(model, tok, out, cls, batch, accum, norm):
    """Parameters after one plain-SGD step (lr 1, no clipping): params - full-batch gradient."""
    model = copy.deepcopy(model)
    sgd = dict(optim="sgd", learning_rate=1.0, max_grad_norm=0.0, loss_norm_type=norm)
    args = _args(out, max_steps=1, per_device_train_batch_size=batch, **sgd,
                 gradient_accumulation_steps=accum)  # fmt: skip
    _trainer(model, tok, args, cls).train()
    return _flat(model)


@pytest.mark.parametrize("norm", ["token", "sequence", "batch"])
def test_gradient_accumulation_does_not_change_the_update(a2d, tmp_path, norm):
    model, tok = a2d
    full = _one_sgd_step(model, tok, tmp_path / "1x8", _PerExampleNoise, 8, 1, norm)
    accumulated = _one_sgd_step(model, tok, tmp_path / "4x2", _PerExampleNoise, 2, 4, norm)
    assert torch.allclose(full, accumulated, atol=1e-6)
    per_micro_batch = _one_sgd_step(model, tok, tmp_path / "bug", _PerMicroBatchNorm, 2, 4, norm)
    assert not torch.allclose(full, per_micro_batch, atol=1e-4)  # the test can tell them apart


class _SignalAt(TrainerCallback):
    """Sends SIGUSR1 to this process at the end of step ``k`` (as Slurm's warning would)."""

    def __init__(self, k):
        self.k = k

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.k:
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_preempted_and_resumed_run_equals_the_uninterrupted_one(a2d, tmp_path, algo):
    model, tok = a2d
    trainer_cls, config_cls = {
        "mdlm": (MDLMTrainer, MDLMConfig),
        "bd3lm": (BD3LMTrainer, BD3LMConfig),
    }[algo]
    extra = {"block_size": 4} if algo == "bd3lm" else {}
    straight = copy.deepcopy(model)
    _trainer(straight, tok, _args(tmp_path / "a", config_cls, **extra), trainer_cls).train()

    args = _args(tmp_path / "b", config_cls, save_strategy="steps", save_steps=100, **extra)
    handler, preemption = signal.getsignal(signal.SIGUSR1), PreemptionCallback()
    first = _trainer(copy.deepcopy(model), tok, args, trainer_cls, [_SignalAt(2), preemption])
    first.train()
    assert preemption.preempted and preemption.received == signal.SIGUSR1
    assert first.state.global_step == 2 and signal.getsignal(signal.SIGUSR1) == handler
    resume = resolve_resume_checkpoint(args.output_dir, "auto")  # the signal's checkpoint
    assert resume == str(tmp_path / "b" / "checkpoint-2")

    resumed = copy.deepcopy(model)  # fresh weights: everything must come from the checkpoint
    _trainer(resumed, tok, args, trainer_cls).train(resume_from_checkpoint=resume)
    assert torch.equal(_flat(straight), _flat(resumed))


def _rows(tokenizer, split: str, n: int, length: int = 32) -> torch.Tensor:
    ids = tokenizer(shakespeare.tiny_shakespeare_text(split)[:20_000])["input_ids"][: n * length]
    return torch.tensor(ids).view(n, length)  # (n, length)


@torch.no_grad()
def _t_grid_loss(model, x0, mask_id, grid=(0.1, 0.3, 0.5, 0.7, 0.9)) -> float:
    """MDLM loss on a fixed t-grid with fixed masks (the same draws before and after training)."""
    gen, total, maskable = torch.Generator().manual_seed(123), 0.0, torch.ones_like(x0).bool()
    for t in grid:
        t_vec = torch.full((len(x0),), t)
        xt, masked = masking.mask_tokens(x0, t_vec, maskable, mask_id, gen)
        total += losses.mdlm_loss(model(xt).logits, x0, masked, maskable, 1 / t_vec).item()
    return total / len(grid)


def test_brief_mdlm_training_lowers_the_held_out_loss(a2d, tmp_path):
    model, tok = a2d
    train, held_out = _rows(tok, "train", 64), _rows(tok, "test", 16)
    data = Dataset.from_dict({"input_ids": train.tolist(), "labels": train.tolist()})
    before = _t_grid_loss(model.eval(), held_out, tok.mask_token_id)
    args = _args(tmp_path, max_steps=40, learning_rate=3e-3, per_device_train_batch_size=16)
    _trainer(model.train(), tok, args, data=data).train()
    after = _t_grid_loss(model.eval(), held_out, tok.mask_token_id)
    assert after < 0.8 * before


class _FixedNoise:
    """t = 0.5 and every other maskable token masked: deterministic, so forwards can be compared."""

    def sample_noise(self, x0, maskable):
        masked = maskable & (torch.arange(x0.shape[1]) % 2 == 0)  # (B, L)
        xt = torch.where(masked, self.mask_token_id, x0)
        return torch.full((len(x0),), 0.5), xt, masked


class _FixedMDLM(_FixedNoise, MDLMTrainer):
    pass


class _FixedBD3LM(_FixedNoise, BD3LMTrainer):
    pass


def _loss_and_logits(trainer, batch):
    with torch.no_grad():
        loss, out = trainer.compute_loss(trainer.model.eval(), batch, return_outputs=True)
    return loss, out["logits"]


def test_bd3lm_with_one_block_is_mdlm(a2d, tmp_path):
    """block_size = L: the x_t half sees only itself (M_BD), exactly MDLM's bidirectional input."""
    model, tok = a2d
    batch = preprocess.DiffusionCollator(tok)(list(_dataset(4)))
    mdlm = _trainer(model, tok, _args(tmp_path), _FixedMDLM)
    bd3lm = _trainer(model, tok, _args(tmp_path, BD3LMConfig, block_size=SEQ), _FixedBD3LM)
    (loss_m, logits_m), (loss_b, logits_b) = (_loss_and_logits(t, batch) for t in (mdlm, bd3lm))
    assert torch.allclose(logits_m, logits_b, atol=1e-5) and torch.allclose(loss_m, loss_b)


def test_bd3lm_runs_the_lm_head_on_the_xt_half_only(a2d, tmp_path):
    """The x_0 half is context: no logits are computed there; x_t's equal the full forward's."""
    model, tok = a2d
    batch = preprocess.DiffusionCollator(tok)(list(_dataset(2)))
    trainer = _trainer(model, tok, _args(tmp_path, BD3LMConfig, block_size=4), _FixedBD3LM)
    head_inputs = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda m, args, out: head_inputs.append(args[0].shape[1])
    )
    try:
        _, logits = _loss_and_logits(trainer, batch)
    finally:
        hook.remove()
    assert head_inputs == [SEQ] and logits.shape[1] == SEQ
    masked = (batch["labels"] != -100) & (torch.arange(SEQ) % 2 == 0)  # as _FixedNoise
    xt = torch.where(masked, tok.mask_token_id, batch["input_ids"])
    ids, pos, mask = blocks.bd3lm_inputs(xt, batch["input_ids"], 4)
    with torch.no_grad():
        full = model(ids, position_ids=pos, attention_mask=mask).logits  # (B, 2L, V)
    assert torch.allclose(logits, full[:, :SEQ], atol=1e-5)


def test_bd3lm_flex_attention_block_mask_equals_the_dense_mask(a2d, tmp_path):
    """FlexAttention's BlockMask (same predicate + key padding) gives sdpa's dense-mask output."""
    model, tok = a2d
    rows = [{"input_ids": r["input_ids"][:6], "labels": r["labels"][:6]} for r in _dataset(2)]
    batch = preprocess.DiffusionCollator(tok, pad_to_multiple_of=4)(rows)  # (2, 8), 2 pads
    trainer = _trainer(model, tok, _args(tmp_path, BD3LMConfig, block_size=4), _FixedBD3LM)
    outs = {}
    for impl in ("sdpa", "flex_attention"):
        model.config._attn_implementation = impl
        outs[impl] = _loss_and_logits(trainer, batch)
    (loss_d, logits_d), (loss_f, logits_f) = outs["sdpa"], outs["flex_attention"]
    assert torch.allclose(logits_d[:, :6], logits_f[:, :6], atol=1e-5)  # real tokens
    assert torch.allclose(loss_d, loss_f, atol=1e-6)


@pytest.mark.parametrize("impl", ["sdpa", "flex_attention"])
def test_bd3lm_pad_tokens_are_never_attended(a2d, tmp_path, impl):
    """Rows of 6 tokens padded to 8 (block 4): the pad ids must not change any real logit."""
    model, tok = a2d
    model.config._attn_implementation = impl
    rows = [{"input_ids": r["input_ids"][:6], "labels": r["labels"][:6]} for r in _dataset(2)]
    trainer = _trainer(model, tok, _args(tmp_path, BD3LMConfig, block_size=4), _FixedBD3LM)
    outs = []
    for pad_id in (0, 7):
        collate = preprocess.DiffusionCollator(tok, pad_token_id=pad_id, pad_to_multiple_of=4)
        outs.append(_loss_and_logits(trainer, collate(rows)))
    (loss_a, logits_a), (loss_b, logits_b) = outs
    assert torch.allclose(logits_a[:, :6], logits_b[:, :6], atol=1e-5)
    assert torch.allclose(loss_a, loss_b)


def test_loss_is_float32_for_bfloat16_models(a2d, tmp_path):
    model, tok = a2d
    trainer = _trainer(model.to(torch.bfloat16), tok, _args(tmp_path), _FixedMDLM)
    loss, logits = _loss_and_logits(trainer, preprocess.DiffusionCollator(tok)(list(_dataset(2))))
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32


def test_right_shift_excludes_position_zero_from_the_maskable_set():
    labels = torch.tensor([[5, 6, -100, 7], [-100, 8, 9, 10]])
    plain = torch.tensor([[True, True, False, True], [False, True, True, True]])
    assert torch.equal(maskable_positions(labels), plain)
    shifted = plain.clone()
    shifted[:, 0] = False
    assert torch.equal(maskable_positions(labels, right_shift_logits=True), shifted)


def test_trainer_refuses_a_model_without_mask_token(fresh_tokenizer, tmp_path):
    model = make_tiny_ar("qwen3", fresh_tokenizer)
    with pytest.raises(ValueError, match="no mask token"):
        _trainer(model, fresh_tokenizer, _args(tmp_path))


def test_trainer_refuses_plain_training_arguments(a2d, tmp_path):
    model, tok = a2d
    with pytest.raises(TypeError, match="MDLMConfig/BD3LMConfig.*TrainingArguments"):
        _trainer(model, tok, TrainingArguments(output_dir=str(tmp_path), use_cpu=True))
    with pytest.raises(TypeError, match="BD3LMTrainer needs a BD3LMConfig"):
        _trainer(model, tok, _args(tmp_path), BD3LMTrainer)


def test_bd3lm_trainer_refuses_flash_attention(a2d, tmp_path):
    model, tok = a2d
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="flash_attention_2.*causal-only"):
        _trainer(model, tok, _args(tmp_path, BD3LMConfig, block_size=4), BD3LMTrainer)


# -------------------------------------------------------- complete checkpoints, exact resume
def _saving_args(out, **kw):
    """4 steps of 3 rows (8 rows: 3 steps an epoch, so the end falls mid-epoch), saved every 2;
    a constant learning rate, so a step past the end would change the weights."""
    base = dict(save_strategy="steps", save_steps=2, per_device_train_batch_size=3)
    base |= dict(lr_scheduler_type="constant")
    return _args(out, **{**base, **kw})


@pytest.fixture
def saved_run(a2d, tmp_path):
    """A 4-step run saved at steps 2 and 4; returns (model, tokenizer, start weights, out dir)."""
    model, tok = a2d
    start = copy.deepcopy(model)
    _trainer(model, tok, _saving_args(tmp_path / "run")).train()
    return model, tok, start, tmp_path / "run"


def _cut_in_half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damages(checkpoint):
    """(name, damage) for every file: removed, cut to half, or (JSON) same-size garbage."""
    for path in sorted(p for p in checkpoint.iterdir() if p.is_file()):
        yield f"{path.name} removed", path, lambda p: p.unlink()
        yield (
            f"{path.name} cut",
            path,
            lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        )
        if path.suffix == ".json":
            yield f"{path.name} garbage", path, lambda p: p.write_bytes(b"{" * p.stat().st_size)


def test_a_save_cut_off_at_any_file_is_skipped_and_resume_is_exact(saved_run):
    model, tok, start, out = saved_run
    assert resolve_resume_checkpoint(out, "auto") == str(out / "checkpoint-4")  # control
    last, tried = out / "checkpoint-4", 0
    for name, path, damage in _damages(last):
        whole = path.read_bytes()
        damage(path)
        logged = []
        assert checkpoints.resolve_resume_checkpoint(out, "auto", logged.append) == str(
            out / "checkpoint-2"
        ), name
        assert "skipping incomplete checkpoint" in logged[0] and str(last) in logged[0], name
        path.write_bytes(whole)
        tried += 1
    assert tried >= 3 * 8  # model, optimizer, scheduler, RNG, states, marker ...
    (last / "trainer_state.json").write_bytes(b"")  # the 0-byte trainer state
    resumed = copy.deepcopy(start)
    resume = resolve_resume_checkpoint(out, "auto")
    _trainer(resumed, tok, _saving_args(out)).train(resume_from_checkpoint=resume)
    assert torch.equal(_flat(resumed), _flat(model)) and checkpoints.is_complete(last)


def test_a_full_disk_during_a_save_loses_nothing(a2d, tmp_path, saved_run):
    """A real tmpfs sized to hold one checkpoint: the second save fails, resume falls back."""
    model, tok, start, reference = saved_run
    if os.geteuid() != 0:
        pytest.fail("mounting the small tmpfs needs root (as the Slurm tests)", pytrace=False)
    size = sum(p.stat().st_size for p in (reference / "checkpoint-2").rglob("*"))
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size * 3 // 2}", "tmpfs", disk], check=True
    )
    try:
        with pytest.raises(Exception):  # noqa: B017 (ENOSPC surfaces as OSError or SafetensorError)
            _trainer(copy.deepcopy(start), tok, _saving_args(disk / "run")).train()
        assert not checkpoints.is_complete(disk / "run" / "checkpoint-4")
        resume = resolve_resume_checkpoint(disk / "run", "auto")
        assert resume == str(disk / "run" / "checkpoint-2")
        subprocess.run(["mount", "-o", f"remount,size={size * 4}", disk], check=True)  # freed
        resumed = copy.deepcopy(start)
        _trainer(resumed, tok, _saving_args(disk / "run")).train(resume_from_checkpoint=resume)
    finally:
        subprocess.run(["umount", "-l", disk], check=False)
    assert torch.equal(_flat(resumed), _flat(model))


class _HFResume(MDLMTrainer):
    """HF's own epoch loop (no a2dkit end-of-run check): the negative control."""

    def _run_epoch(self, *args, **kwargs):
        if getattr(self, "_a2d_resume", None):
            self._a2d_resume = None
        return Trainer._run_epoch(self, *args, **kwargs)


@pytest.mark.parametrize("cls, extra_steps", [(MDLMTrainer, 0), (_HFResume, 1)])
def test_resuming_at_the_last_step_trains_no_extra_step(saved_run, cls, extra_steps):
    model, tok, _, out = saved_run
    end = load_file(out / "checkpoint-4" / "model.safetensors")
    args = _saving_args(out, save_strategy="no")
    resumed = _trainer(copy.deepcopy(model), tok, args, cls)
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-4"))
    assert resumed.state.global_step == 4 + extra_steps
    state = resumed.model.state_dict()
    equal = [torch.equal(state[k], v) for k, v in end.items()]
    assert all(equal) if extra_steps == 0 else not all(equal)


def test_the_loss_log_of_a_stopped_and_resumed_run_equals_the_uninterrupted_one(a2d, tmp_path):
    model, tok = a2d
    kw = dict(max_steps=6, logging_steps=3, save_strategy="steps", save_steps=100)
    straight = _trainer(copy.deepcopy(model), tok, _args(tmp_path / "a", **kw))
    straight.train()
    first = _trainer(copy.deepcopy(model), tok, _args(tmp_path / "b", **kw),
                     callbacks=[_SignalAt(2), PreemptionCallback()])  # fmt: skip
    first.train()  # stopped at step 2, inside the logging window (0, 3]
    resumed = _trainer(copy.deepcopy(model), tok, _args(tmp_path / "b", **kw))
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-2"))

    def losses_of(trainer):
        return [(r["step"], r["loss"]) for r in trainer.state.log_history if "loss" in r]

    assert losses_of(straight) == losses_of(resumed) and len(losses_of(resumed)) == 2


def test_right_shifted_bd3lm_reads_each_block_start_from_the_clean_prefix(a2d, tmp_path):
    """Token i uses column i - 1: of x_t inside a block, of clean x_0 at a block's first token
    (what the block sampler conditions on); the noisy x_t column there would differ."""
    model, tok = a2d
    model.eval()
    rows = list(_dataset(4))[1:3]  # prompts of 2 and 4 tokens: position 0 is never masked
    batch = preprocess.DiffusionCollator(tok)(rows)  # so both trainers draw the same x_t
    x0, bs = batch["input_ids"], 4
    args = dict(cls=BD3LMConfig, block_size=bs)
    plain = _trainer(model, tok, _args(tmp_path, **args), _FixedBD3LM)
    shifted = _trainer(model, tok, _args(tmp_path, right_shift_logits=True, **args), _FixedBD3LM)
    _, unshifted_logits = _loss_and_logits(plain, batch)
    loss, logits = _loss_and_logits(shifted, batch)
    inside = [i for i in range(1, SEQ) if i % bs]
    assert torch.allclose(logits[:, inside], unshifted_logits[:, [i - 1 for i in inside]])
    with torch.no_grad():
        for start in range(bs, SEQ, bs):  # x_0's column start - 1 sees clean blocks < start / bs
            mask = attention.block_causal_mask(torch.ones_like(x0[:, :start]).bool(), bs)
            clean = model(x0[:, :start], attention_mask=mask).logits[:, -1]
            assert torch.allclose(logits[:, start], clean, atol=1e-5)
            assert not torch.allclose(unshifted_logits[:, start - 1], clean, atol=1e-3)
    assert torch.isfinite(loss) and model.config.right_shift_logits is True


def test_the_trainer_records_the_shift_in_the_saved_config(a2d, tmp_path):
    model, tok = a2d
    for shift in (True, False):
        trainer = _trainer(model, tok, _args(tmp_path, right_shift_logits=shift, max_steps=1))
        trainer.save_model(str(tmp_path / f"shift-{shift}"))
        saved = json.loads((tmp_path / f"shift-{shift}" / "config.json").read_text())
        assert saved["right_shift_logits"] is shift
