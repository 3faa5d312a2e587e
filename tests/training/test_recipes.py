"""The AR-preserving recipes in the trainers, each against a direct computation of its step
(float64 on a tiny model and its fresh conversion): with every flag off the step is the plain
NELBO bit for bit; position-dependent and complementary masking, full-mask rows, MDLM's semi-AR
blocks and their curriculum, DiffuLLaMA annealing, teacher distillation, the block-size curriculum
and layer-wise learning rates; all of them together resume exactly; the checkpoint records the
recipe."""

import copy
import json
import signal

import pytest
import torch
from conftest import make_tiny_ar
from test_trainers import _args, _dataset, _flat, _SignalAt, _trainer

from a2dkit import convert
from a2dkit.diffusion import blocks, losses, masking
from a2dkit.diffusion.curriculum import parse_block_schedule
from a2dkit.training.checkpoints import resolve_resume_checkpoint
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.training.resumable import PreemptionCallback
from a2dkit.training.trainers import BD3LMTrainer, MDLMTrainer

EPS = 1e-3
SEQ_ANSWER = 16  # the longest answer of _batch (row 0 has no prompt)


@pytest.fixture
def pair(fresh_tokenizer):
    """A tiny AR source and its fresh conversion, float64 (no dropout: tiny)."""
    source = make_tiny_ar("qwen3", fresh_tokenizer).double()
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), fresh_tokenizer)
    return source.eval(), a2d.double().train(), tok


def _batch(n=4):
    rows = _dataset(n)
    return {k: torch.tensor(rows[k]) for k in ("input_ids", "labels")}


def _loss(trainer, batch, seed=0, step=0):
    trainer.state.global_step = step
    torch.manual_seed(seed)  # the same noise for every call
    return trainer.compute_loss(trainer.model, batch)


def _draw(batch, tok, p_mask_of_t):
    """The plain forward process, drawn as the trainer draws it (same RNG order)."""
    x0, maskable = batch["input_ids"], batch["labels"] != -100
    torch.manual_seed(0)
    t = masking.sample_t(len(x0), eps=EPS)
    xt, masked = masking.mask_tokens(x0, p_mask_of_t(t, maskable), maskable, tok.mask_token_id)
    return x0, maskable, t, xt, masked


def _nelbo(logits, x0, masked, maskable, weight):
    """Σ w · CE over masked tokens / maskable tokens, written out."""
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x0, reduction="none")
    return (torch.where(masked, ce * weight, 0.0)).sum() / maskable.sum()


def test_with_every_recipe_off_a_step_is_the_plain_nelbo_bit_for_bit(pair, tmp_path):
    _, a2d, tok = pair
    batch = _batch()
    x0, maskable, t, xt, masked = _draw(batch, tok, lambda t, m: t)  # linear: p_mask = t
    plain = losses.mdlm_loss(a2d(xt).logits, x0, masked, maskable, 1 / t)
    got = _loss(_trainer(a2d, tok, _args(tmp_path)), batch)
    assert torch.equal(got, plain)
    x0, maskable, t, xt, masked = _draw(batch, tok, lambda t, m: t)
    ids, pos, mask = blocks.bd3lm_inputs(xt, x0, 4)
    logits = a2d(input_ids=ids, position_ids=pos, attention_mask=mask).logits[:, :16]
    bd3lm = _trainer(a2d, tok, _args(tmp_path / "b", BD3LMConfig, block_size=4), BD3LMTrainer)
    assert torch.equal(_loss(bd3lm, batch), losses.mdlm_loss(logits, x0, masked, maskable, 1 / t))


def test_position_dependent_masking_is_the_per_token_schedule_nelbo(pair, tmp_path):
    """p_i = 1 - (1 - t)^k_i, w_i = k_i (1 - t)^(k_i - 1) / p_i (linear), k_i = e^{λ(2r_i - 1)}."""
    _, a2d, tok = pair
    batch, lam = _batch(), 0.8

    def k_of(maskable):
        r = (maskable.cumsum(1) - 1) / (maskable.sum(1, keepdim=True) - 1)
        return torch.where(maskable, torch.exp(lam * (2 * r - 1)), 1.0)

    x0, maskable, t, xt, masked = _draw(batch, tok, lambda t, m: 1 - (1 - t[:, None]) ** k_of(m))
    k, s = k_of(maskable), (1 - t[:, None])
    weight = k * s ** (k - 1) / (1 - s**k)
    direct = _nelbo(a2d(xt).logits, x0, masked, maskable, weight)
    got = _loss(_trainer(a2d, tok, _args(tmp_path, position_mask_strength=lam)), batch)
    assert got.item() == pytest.approx(direct.item(), rel=1e-9)
    assert not torch.equal(got, _loss(_trainer(a2d, tok, _args(tmp_path / "0")), batch))


def test_complementary_masking_averages_a_view_and_its_complement(pair, tmp_path):
    _, a2d, tok = pair
    batch = _batch()
    x0, maskable, t, xt, masked = _draw(batch, tok, lambda t, m: t)
    other = maskable & ~masked
    xt_c = torch.where(other, tok.mask_token_id, x0)
    t_c = (1 - t).clamp(min=EPS)  # linear: p_mask(t') = 1 - t
    first = _nelbo(a2d(xt).logits, x0, masked, maskable, (1 / t)[:, None])
    second = _nelbo(a2d(xt_c).logits, x0, other, maskable, (1 / t_c)[:, None])
    got = _loss(_trainer(a2d, tok, _args(tmp_path, complementary_masking=True)), batch)
    assert got.item() == pytest.approx(((first + second) / 2).item(), rel=1e-9)


@pytest.mark.parametrize("prob", [1.0, 0.5])
def test_full_mask_rows_are_fully_masked_at_weight_w1(pair, tmp_path, prob):
    """TiDAR's rows: t = 1 for a share ``prob`` of the rows (one draw per row after t), so every
    maskable token of those rows is masked and weighted w(1) = 1 (linear); the rest are plain."""
    _, a2d, tok = pair
    batch = _batch()
    x0, maskable = batch["input_ids"], batch["labels"] != -100
    torch.manual_seed(0)
    t = masking.sample_t(len(x0), eps=EPS)
    full = torch.rand(len(x0)) < prob
    t = torch.where(full, 1.0, t)
    xt, masked = masking.mask_tokens(x0, t, maskable, tok.mask_token_id)
    assert torch.equal(masked[full], maskable[full]) and full.any()  # whole rows masked
    if prob < 1:
        assert not full.all()  # control: some rows were drawn plain
    want = _nelbo(a2d(xt).logits, x0, masked, maskable, (1 / t)[:, None])
    got = _loss(_trainer(a2d, tok, _args(tmp_path, full_mask_prob=prob)), batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-9)
    plain = _loss(_trainer(a2d, tok, _args(tmp_path / "p")), batch)
    assert plain.item() != pytest.approx(got.item(), rel=1e-6)  # control: the flag changed it


def _semi_ar_draw(batch, tok, size):
    """t, the semi-AR blocks, each row's noised block and x_t, drawn as the trainer draws them."""
    x0, maskable = batch["input_ids"], batch["labels"] != -100
    torch.manual_seed(0)
    t = masking.sample_t(len(x0), eps=EPS)
    rank = maskable.long().cumsum(1) - 1
    block = torch.where(maskable, rank // size, -1)
    blocks = (maskable.sum(1) + size - 1) // size
    current = (torch.rand(len(x0)) * blocks).floor().long()
    p = torch.where(block == current[:, None], t[:, None], (block > current[:, None]).float())
    xt, masked = masking.mask_tokens(x0, p, maskable, tok.mask_token_id)
    return x0, maskable, t, block, blocks, current, xt, masked


@pytest.mark.parametrize("complementary", [False, True])
def test_semi_ar_mdlm_scores_one_block_after_clean_ones_before_masked_ones(pair, tmp_path,
                                                                           complementary):
    """MDLM trained as semi-AR sampling reads: per row one block of 2 answer tokens noised at t,
    the blocks before it clean, those after it all masks; only that block is scored, at w(t) x
    the row's number of blocks (with its complement: the block's other tokens, later ones still
    masked)."""
    _, a2d, tok = pair
    batch = _batch()
    x0, maskable, t, block, blocks, current, xt, masked = _semi_ar_draw(batch, tok, 2)
    inside, later = block == current[:, None], block > current[:, None]
    assert torch.equal(masked & later, later) and not (masked & (block < current[:, None])).any()
    assert (blocks > 1).all() and (current > 0).any()  # control: rows with clean blocks before
    want = _nelbo(a2d(xt).logits, x0, masked & inside, maskable, (blocks / t)[:, None])
    if complementary:
        other = inside & ~masked
        xt_c = torch.where(other | later, tok.mask_token_id, x0)
        t_c = (1 - t).clamp(min=EPS)
        second = _nelbo(a2d(xt_c).logits, x0, other, maskable, (blocks / t_c)[:, None])
        want = (want + second) / 2
    args = _args(tmp_path, semi_ar_block_size=2, complementary_masking=complementary)
    got = _loss(_trainer(a2d, tok, args), batch)
    # t' is found by bisection and stored as float32 t: one float32 ulp from 1 - t at most
    assert got.item() == pytest.approx(want.item(), rel=1e-7 if complementary else 1e-9)
    plain = _loss(_trainer(a2d, tok, _args(tmp_path / "p", complementary_masking=complementary)),
                  batch)  # fmt: skip
    assert plain.item() != pytest.approx(got.item(), rel=1e-6)  # control: the flag changed it


def test_the_semi_ar_curriculum_sets_each_steps_block_and_is_recorded(pair, tmp_path):
    _, a2d, tok = pair
    schedule = parse_block_schedule("1:2,4", block_size=4, max_length=16)
    args = _args(tmp_path, semi_ar_block_size=4, semi_ar_block_schedule="1:2,4")
    trainer = _trainer(a2d, tok, args, semi_ar_schedule=schedule)
    for step, size in ((0, 1), (1, 1), (2, 4), (3, 4)):
        _loss(trainer, _batch(), step=step)
        block = trainer._semi_ar[0]
        assert block.max().item() == (SEQ_ANSWER - 1) // size, (step, size)
    recipe = a2d.config.a2d_recipe
    assert recipe["semi_ar_block_schedule"] == [[1, 2], [4, None]] and recipe["block_size"] == 4
    with pytest.raises(ValueError, match="semi_ar_block_schedule='1:2,4': pass semi_ar_schedule"):
        _trainer(a2d, tok, args)
    with pytest.raises(ValueError, match="semi_ar_schedule= was given but"):
        _trainer(a2d, tok, _args(tmp_path), semi_ar_schedule=schedule)


def test_annealing_starts_causal_and_ends_as_plain_mdlm(pair, tmp_path):
    """Ratio 0 at step 0: the fresh conversion attends causally, so its logits are its source's;
    at the end of annealing the step is plain MDLM again, bit for bit."""
    source, a2d, tok = pair
    batch = _batch()
    x0, maskable, t, xt, masked = _draw(batch, tok, lambda t, m: t)
    direct = losses.mdlm_loss(source(xt).logits, x0, masked, maskable, 1 / t)
    annealed = _trainer(a2d, tok, _args(tmp_path, attention_anneal_steps=4))
    assert _loss(annealed, batch).item() == pytest.approx(direct.item(), rel=1e-9)
    plain = _trainer(a2d, tok, _args(tmp_path / "p"))
    assert torch.equal(_loss(annealed, batch, step=4), _loss(plain, batch))
    assert not torch.equal(_loss(annealed, batch, step=2), _loss(plain, batch))  # control


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_distillation_adds_the_kl_to_the_source_at_clean_prefix_tokens(pair, tmp_path, algo):
    source, a2d, tok = pair
    batch, beta = _batch(), 0.6
    cfg, cls = (BD3LMConfig, BD3LMTrainer) if algo == "bd3lm" else (MDLMConfig, MDLMTrainer)
    kw = dict(block_size=4) if algo == "bd3lm" else {}
    plain = _trainer(a2d, tok, _args(tmp_path / "p", cfg, **kw), cls)
    distil = _trainer(a2d, tok, _args(tmp_path, cfg, distill_weight=beta, **kw), cls,
                      teacher=source)  # fmt: skip
    added = _loss(distil, batch) - _loss(plain, batch)
    x0, maskable, t, xt, masked = _draw(batch, tok, lambda t, m: t)
    if algo == "bd3lm":
        ids, pos, mask = blocks.bd3lm_inputs(xt, x0, 4)
        student = a2d(input_ids=ids, position_ids=pos, attention_mask=mask).logits[:, :16]
    else:
        student = a2d(xt).logits
    teacher = source(x0).logits
    unit = 4 if algo == "bd3lm" else 16
    total = 0.0
    for b in range(len(x0)):
        for i in range(1, 16):
            start = i - i % unit
            if masked[b, i] and not masked[b, start:i].any():  # first masked token of its unit
                p = torch.softmax(teacher[b, i - 1], -1)  # the source predicts i from x_0[<i]
                log_q = torch.log_softmax(student[b, i], -1)[: p.shape[0]]
                total += (p * (p.log() - log_q)).sum().item()
    assert added.item() == pytest.approx(beta * total / maskable.sum().item(), rel=1e-9)
    assert total > 1e-3  # control: not vacuous (bidirectional x_t is not its causal source)


def test_distillation_without_a_teacher_is_refused(pair, tmp_path):
    _, a2d, tok = pair
    with pytest.raises(ValueError, match="distill_weight > 0 needs teacher="):
        _trainer(a2d, tok, _args(tmp_path, distill_weight=0.5))


def test_the_block_curriculum_trains_each_step_at_its_scheduled_size(pair, tmp_path):
    _, a2d, tok = pair
    batch = _batch()
    schedule = parse_block_schedule("2:2,4", block_size=4, max_length=16)
    args = _args(tmp_path, BD3LMConfig, block_size=4, block_size_schedule="2:2,4")
    curriculum = _trainer(a2d, tok, args, BD3LMTrainer, block_schedule=schedule)
    fixed = {
        b: _trainer(a2d, tok, _args(tmp_path / str(b), BD3LMConfig, block_size=b), BD3LMTrainer)
        for b in (2, 4)
    }
    assert torch.equal(_loss(curriculum, batch, step=1), _loss(fixed[2], batch))
    assert torch.equal(_loss(curriculum, batch, step=2), _loss(fixed[4], batch))
    assert not torch.equal(_loss(fixed[2], batch), _loss(fixed[4], batch))  # control
    with pytest.raises(ValueError, match="pass block_schedule="):
        _trainer(a2d, tok, args, BD3LMTrainer)


def test_layer_wise_learning_rates_scale_each_group(pair, tmp_path):
    _, a2d, tok = pair
    a2d = a2d.float()
    args = _args(tmp_path, max_steps=1, optim="sgd", learning_rate=0.5, max_grad_norm=0.0,
                 lr_multipliers="mlp=0,embed_tokens=0.1")  # fmt: skip
    trainer = _trainer(a2d, tok, args)
    before = {n: p.detach().clone() for n, p in a2d.named_parameters()}
    trainer.train()
    lrs = sorted({g["initial_lr"] for g in trainer.optimizer.param_groups})
    assert lrs == pytest.approx([0.0, 0.05, 0.5])
    for name, param in a2d.named_parameters():
        moved = not torch.equal(before[name], param.detach())
        assert moved == ("mlp" not in name), name  # frozen at 0 x, trained otherwise
    with pytest.raises(ValueError, match=r"\['mpl'\] match no trainable parameter"):
        _trainer(a2d, tok, _args(tmp_path / "x", lr_multipliers="mpl=0.1")).create_optimizer()


ALL_ON = dict(ar_loss_weight=0.3, attention_anneal_steps=3, distill_weight=0.5,
              position_mask_strength=0.5, complementary_masking=True, full_mask_prob=0.5,
              lr_multipliers="mlp=0.5")  # fmt: skip


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_every_recipe_together_resumes_exactly_and_is_recorded(fresh_tokenizer, tmp_path, algo):
    source = make_tiny_ar("qwen3", fresh_tokenizer)
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), fresh_tokenizer)
    cfg, cls, extra = MDLMConfig, MDLMTrainer, dict(ALL_ON)
    kw = dict(teacher=source)
    if algo == "mdlm":  # MDLM's semi-AR blocks, growing 2 -> 4
        extra |= dict(semi_ar_block_size=4, semi_ar_block_schedule="2:2,4")
        kw["semi_ar_schedule"] = parse_block_schedule("2:2,4", block_size=4, max_length=16)
    if algo == "bd3lm":
        cfg, cls = BD3LMConfig, BD3LMTrainer
        extra |= dict(block_size=4, block_size_schedule="2:2,4")
        kw["block_schedule"] = parse_block_schedule("2:2,4", block_size=4, max_length=16)
    straight = copy.deepcopy(a2d.train())
    _trainer(straight, tok, _args(tmp_path / "a", cfg, **extra), cls, **kw).train()
    moved = not torch.equal(_flat(straight), _flat(a2d))
    args = _args(tmp_path / "b", cfg, save_strategy="steps", save_steps=100, **extra)
    preemption = PreemptionCallback()
    _trainer(copy.deepcopy(a2d), tok, args, cls, [_SignalAt(2), preemption], **kw).train()
    assert preemption.preempted and signal.getsignal(signal.SIGUSR1) is not None
    resume = resolve_resume_checkpoint(args.output_dir, "auto")
    resumed = copy.deepcopy(a2d)
    _trainer(resumed, tok, args, cls, **kw).train(resume_from_checkpoint=resume)
    assert moved and torch.equal(_flat(straight), _flat(resumed))
    saved = json.loads((tmp_path / "b" / "checkpoint-2" / "config.json").read_text())
    recipe = saved["a2d_recipe"]
    assert {k: recipe[k] for k in ALL_ON} == ALL_ON and saved["ar_loss_weight"] == 0.3
    if algo == "bd3lm":
        assert recipe["block_size_schedule"] == [[2, 2], [4, None]] and recipe["block_size"] == 4
    else:
        assert recipe["semi_ar_block_schedule"] == [[2, 2], [4, None]] and recipe["block_size"] == 4
