"""MDLM / BD3LM samplers: exactness against the model-card algorithm, KV cache, invariants."""

from __future__ import annotations

import copy
import functools
import io
import math
import types

import pytest
import torch
from conftest import FAMILIES, make_tiny_ar
from reference_samplers import (
    even_split,
    naive_bd3lm_generate,
    steps_off_reference,
    trained_logits,
)
from transformers import DynamicCache

from a2dkit.cli import chat as chat_cli
from a2dkit.cli import sample as sample_cli
from a2dkit.convert import to_diffusion
from a2dkit.diffusion import attention
from a2dkit.diffusion.denoise import (
    guide,
    num_transfer_tokens,
    sample_tokens,
    select_transfer,
    suppress,
)
from a2dkit.diffusion.schedules import make_schedule
from a2dkit.samplers import (
    BD3LMSampler,
    BD3LMSamplerConfig,
    MDLMSampler,
    MDLMSamplerConfig,
    SamplerOutput,
)

PROMPTS = ["ROMEO: But, soft! what", "All: Speak", "First Citizen: Before we proceed"]


@pytest.fixture(scope="module")
def a2d(small_tokenizer):
    """``a2d(family, seed=0)`` -> (converted model, tokenizer with <|mask|>), built once."""
    built = {}

    def get(family: str, seed: int = 0):
        if (family, seed) not in built:
            tok = copy.deepcopy(small_tokenizer)
            built[family, seed] = to_diffusion(make_tiny_ar(family, tok, seed=seed), tok)[:2]
        return built[family, seed]

    return get


class Biased(torch.nn.Module):
    """Adds a fixed bias (R, V) to the logits of batch rows (R = 1 broadcasts to all rows)."""

    def __init__(self, model, bias: torch.Tensor):
        super().__init__()
        self.model, self.config, self.bias = model, model.config, bias

    @property
    def device(self):
        return self.model.device

    def forward(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        out.logits = out.logits + self.bias[:, None, : out.logits.shape[-1]]
        return out


def encode(tok, text: str, length: int | None = None) -> list[int]:
    ids = tok(text)["input_ids"]
    return ids[:length] if length else ids


def masked_left(out: SamplerOutput, mask_id: int) -> int:
    return int((out.sequences[:, out.gen_start :] == mask_id).sum())


# ---------------------------------------------------------------- exactness vs the model card


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("block_size, new, steps", [(4, 12, 6), (8, 16, 16)])
def test_bd3lm_matches_model_card_reference(a2d, family, block_size, new, steps):
    model, tok = copy.deepcopy(a2d(family))
    # a2dkit never predicts <|mask|> (the card's code may): keep the oracle's model off it
    model.get_output_embeddings().weight.data[tok.mask_token_id] = 0.0
    prompt = encode(tok, PROMPTS[0], 8)  # a multiple of every block size used here
    assert len(prompt) == 8 and tok.pad_token_id not in prompt
    ref = naive_bd3lm_generate(
        model, prompt, mask_id=tok.mask_token_id, pad_id=tok.pad_token_id,
        eos_id=tok.eos_token_id, max_new_tokens=new, block_size=block_size, steps=steps,
    )[0, 8:]  # fmt: skip
    out = BD3LMSampler(model, tok).sample([prompt], max_new_tokens=new, block_size=block_size,
                                          steps=steps)  # fmt: skip
    ours = out.sequences[0, out.gen_start :]
    assert out.gen_start == 8 and out.sequences[0, :8].tolist() == prompt
    committed = ref != tok.mask_token_id  # the reference stops at the step that emits EOS
    assert committed.any()
    assert torch.equal(ours[: len(ref)][committed], ref[committed])
    if tok.eos_token_id not in ref.tolist():
        assert torch.equal(ours, ref)


def test_kv_cached_block_step_equals_full_forward(a2d):
    model, _ = a2d("qwen3")
    bs, prefix = 4, 8
    x = torch.randint(0, 250, (2, prefix + bs))
    valid = torch.ones_like(x, dtype=torch.bool)
    valid[1, :3] = False  # row 1 is left-padded
    pos = attention.padding_position_ids(valid)
    full = model(x, attention_mask=attention.block_causal_mask(valid, bs), position_ids=pos).logits
    cache = DynamicCache(config=model.config)
    model(x[:, :prefix], attention_mask=attention.block_causal_mask(valid[:, :prefix], bs),
          position_ids=pos[:, :prefix], past_key_values=cache, use_cache=True)  # fmt: skip
    block_mask = attention.block_causal_mask(valid, bs)[:, :, prefix:]  # (B, 1, bs, T)
    for _ in range(2):  # the second step must see the same cache: the crop undid the append
        step = model(x[:, prefix:], attention_mask=block_mask, position_ids=pos[:, prefix:],
                     past_key_values=cache, use_cache=False).logits  # fmt: skip
        assert cache.get_seq_length() == prefix + bs  # transformers appends even so ...
        cache.crop(-bs)  # ... so the sampler crops it back instead of deep-copying
        assert cache.get_seq_length() == prefix
        assert (step - full[:, prefix:]).abs().max() < 1e-5


def test_bd3lm_encodes_each_prefix_token_once(a2d):
    model, tok = a2d("llama")
    fed = []  # number of tokens in each forward call
    hook = model.register_forward_pre_hook(
        lambda m, args, kw: fed.append((args or [kw.get("input_ids")])[0].shape[1]),
        with_kwargs=True,
    )
    try:  # EOS suppressed: all 4 blocks are generated
        out = BD3LMSampler(model, tok).sample([encode(tok, PROMPTS[1])], max_new_tokens=16,
                                              block_size=4, steps=8,
                                              suppress_tokens=[tok.eos_token_id])  # fmt: skip
    finally:
        hook.remove()
    assert fed[0] == out.gen_start  # the prompt, once
    assert fed[1:] == [4] * (len(fed) - 1) and len(fed) == out.nfe  # then only block-sized passes
    assert out.nfe == 1 + 4 * 2 + 3  # prompt + 2 steps x 4 blocks + 3 cache writes


# ---------------------------------------------------------------- MDLM invariants


@pytest.mark.parametrize("block_size, steps", [(12, 12), (4, 6), (12, 5)])
def test_mdlm_history_is_monotone_and_follows_the_transfer_schedule(a2d, block_size, steps):
    model, tok = a2d("qwen2")
    prompts = [encode(tok, p) for p in PROMPTS]
    out = MDLMSampler(model, tok).sample(prompts, max_new_tokens=12, block_size=block_size,
                                         steps=steps)  # fmt: skip
    mask, start = tok.mask_token_id, out.gen_start
    assert masked_left(out, mask) == 0 and len(out.history) == out.nfe + 1
    for row, p in enumerate(prompts):
        assert out.sequences[row, start - len(p) : start].tolist() == p
    assert (out.history[0][:, start:] == mask).all()
    per_block = even_split(block_size, math.ceil(steps / math.ceil(12 / block_size)))
    expected = [k for _ in range(12 // block_size) for k in per_block if k > 0]
    for step, (a, b) in enumerate(zip(out.history[:-1], out.history[1:], strict=True)):
        changed = a != b
        assert (a[changed] == mask).all()  # only masks change; committed tokens stay
        assert changed.sum(-1).tolist() == [expected[step]] * len(prompts)
    assert torch.equal(out.history[-1], out.sequences)


def test_mdlm_batch_equals_each_prompt_alone(a2d):
    model, tok = a2d("mistral")
    prompts = [encode(tok, p) for p in PROMPTS]
    sampler, kw = MDLMSampler(model, tok), dict(max_new_tokens=8, block_size=4, steps=8)
    batch = sampler.sample(prompts, **kw)
    for row, p in enumerate(prompts):
        alone = sampler.sample([p], **kw)
        assert torch.equal(batch.sequences[row, batch.gen_start :], alone.sequences[0, -8:])


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
@pytest.mark.parametrize(
    "options",
    [dict(cfg_scale=1.5), dict(temperature=1.0, stochastic_transfer=True),
     dict(remasking="random"), dict(right_shift_logits=True), dict(return_history=False)],
)  # fmt: skip
def test_options_fill_every_mask(a2d, sampler_cls, options):
    model, tok = a2d("gpt2")
    prompts = [encode(tok, p) for p in PROMPTS[:2]]
    out = sampler_cls(model, tok).sample(prompts, max_new_tokens=8, block_size=4, steps=4,
                                         **options)  # fmt: skip
    assert masked_left(out, tok.mask_token_id) == 0
    assert (out.history is None) == (options == dict(return_history=False))


# ---------------------------------------------------------------- suppression, EOS, threshold


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_suppressed_tokens_never_appear(a2d, sampler_cls, temperature):
    model, tok = a2d("qwen3")
    favoured = [40, 41]
    bias = torch.zeros(1, 512)
    bias[0, favoured] = torch.tensor([80.0, 50.0])  # the argmax everywhere, by far
    sampler = sampler_cls(Biased(model, bias), tok)
    prompts, kw = [encode(tok, p) for p in PROMPTS[:2]], dict(max_new_tokens=8, block_size=4)
    control = sampler.sample(prompts, temperature=temperature, steps=4, **kw)
    assert (control.sequences[:, control.gen_start :] == favoured[0]).all()
    for field in ("suppress_tokens", "begin_suppress_tokens"):
        out = sampler.sample(prompts, temperature=temperature, steps=4, **{field: favoured}, **kw)
        new = out.sequences[:, out.gen_start :]
        assert not torch.isin(new, torch.tensor(favoured)).any()
        assert masked_left(out, tok.mask_token_id) == 0


def test_bd3lm_finished_rows_get_padding_and_sampling_stops(a2d):
    model, tok = a2d("qwen3")
    eos, bias = tok.eos_token_id, torch.zeros(2, 512)
    bias[0, eos] = 100.0  # row 0 emits EOS in its first block; row 1 is untouched
    sampler = BD3LMSampler(Biased(model, bias), tok)
    prompts, kw = [encode(tok, PROMPTS[0], 8)] * 2, dict(max_new_tokens=12, block_size=4, steps=6)
    out = sampler.sample(prompts, **kw)
    new = out.sequences[:, out.gen_start :]
    assert (new[0, :4] == eos).all() and (new[0, 4:] == tok.pad_token_id).all()
    alone = BD3LMSampler(model, tok).sample(prompts[:1], **kw)
    assert torch.equal(new[1], alone.sequences[0, alone.gen_start :])
    everyone = BD3LMSampler(Biased(model, bias[:1]), tok).sample(prompts, **kw)
    assert everyone.nfe == 1 + 2  # prompt encode + 2 steps of block 1, then every row is done
    assert (everyone.sequences[:, everyone.gen_start + 4 :] == tok.pad_token_id).all()


@pytest.mark.parametrize("sampler_cls, fixed_nfe, fast_nfe", [(MDLMSampler, 16, 2),
                                                              (BD3LMSampler, 18, 4)])  # fmt: skip
def test_threshold_decoding_needs_fewer_forward_passes(a2d, sampler_cls, fixed_nfe, fast_nfe):
    model, tok = a2d("qwen3")
    bias = torch.zeros(1, 512)
    bias[0, 40] = 30.0  # p(token 40) > 0.9 everywhere: a confident model
    sampler = sampler_cls(Biased(model, bias), tok)
    prompts, kw = [encode(tok, p) for p in PROMPTS[:2]], dict(max_new_tokens=16, block_size=8)
    fixed = sampler.sample(prompts, steps=16, **kw)
    fast = sampler.sample(prompts, steps=16, threshold=0.9, **kw)
    # fixed: one token per step (+ prompt encode and one cache write for BD3LM); threshold:
    # each block is committed in a single step
    assert (fixed.nfe, fast.nfe) == (fixed_nfe, fast_nfe)
    assert (fast.sequences[:, fast.gen_start :] == 40).all()
    assert len(fast.history) == 1 + 2


def test_threshold_decoding_commits_at_least_one_token_per_step(a2d):
    model, tok = a2d("qwen3")
    flat = copy.deepcopy(model)
    flat.lm_head.weight.data.zero_()  # uniform predictions: nothing reaches the threshold
    out = MDLMSampler(flat, tok).sample([encode(tok, PROMPTS[0])], max_new_tokens=8, steps=2,
                                        block_size=8, threshold=0.5)  # fmt: skip
    assert out.nfe == 8 and masked_left(out, tok.mask_token_id) == 0


# ---------------------------------------------------------------- pure helpers


def test_num_transfer_tokens_even_split_and_schedule():
    counts = num_transfer_tokens(torch.tensor([10, 3, 0]), 4)
    assert counts.tolist() == [[3, 3, 2, 2], [1, 1, 1, 0], [0, 0, 0, 0]]
    linear = num_transfer_tokens(torch.tensor([12]), 4, schedule=make_schedule("linear"))
    assert linear.tolist() == [[3, 3, 3, 3]]  # reveal 1/(steps - j) of what is left
    torch.manual_seed(0)
    drawn = num_transfer_tokens(torch.tensor([50, 7]), 5, stochastic=True)
    assert drawn.sum(1).tolist() == [50, 7] and (drawn >= 0).all()


def dllm_linear_counts(count: int, steps: int) -> list[int]:
    """Oracle of dLLM's deterministic ``get_num_transfer_tokens`` with its linear alpha scheduler:
    step j reveals round(left * (1 - s/t)), t = (steps-j)/steps, s = t - 1/steps; alpha(x) = 1 - x
    and s/t in float32, round half to even (torch.round) in float64."""
    out = []
    for j in range(steps):
        t, s = (
            torch.tensor(x, dtype=torch.float32)
            for x in ((steps - j) / steps, (steps - j - 1) / steps)
        )
        keep = float((1 - (1 - s)) / (1 - (1 - t)))  # fmt: skip
        n = min(int(torch.round(torch.tensor(count, dtype=torch.float64) * (1 - keep))), count)
        out.append(n)
        count -= n
    return out


def test_linear_schedule_counts_equal_dllm_rounding_on_every_tie():
    counts = torch.arange(0, 41)  # the old float arithmetic missed 336 ties up to (69, 39)
    for steps in range(1, 21):
        got = num_transfer_tokens(counts, steps, schedule=make_schedule("linear"))
        assert got.tolist() == [dllm_linear_counts(int(c), steps) for c in counts], steps
    even = num_transfer_tokens(torch.tensor([8]), 3)  # a2dkit's default: the model card's split
    linear = num_transfer_tokens(torch.tensor([8]), 3, schedule=make_schedule("linear"))
    assert even.tolist() == [[3, 3, 2]] and linear.tolist() == [[3, 2, 3]]  # 8*1/3, 5*1/2 -> 2


@pytest.mark.parametrize("schedule, per_block", [(None, [3, 3, 2]), ("linear", [3, 2, 3])])
def test_mdlm_schedule_option_sets_the_tokens_committed_per_step(a2d, schedule, per_block):
    model, tok = a2d("qwen2")
    out = MDLMSampler(model, tok).sample([encode(tok, PROMPTS[0])], max_new_tokens=32,
                                         block_size=8, steps=12, schedule=schedule)  # fmt: skip
    changed = [int((a != b).sum()) for a, b in zip(out.history[:-1], out.history[1:], strict=True)]
    assert changed == per_block * 4 and out.nfe == 12
    with pytest.raises(ValueError, match="schedule='linaer'"):
        MDLMSamplerConfig(schedule="linaer")


def test_cli_schedule_flag_reaches_the_sampler():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(sample_cli.SampleArguments).parse_args_into_dataclasses(
        ["--model_name_or_path", "m", "--schedule", "linear"]
    )
    assert sample_cli.sampler_options(args)["schedule"] == "linear"
    with pytest.raises(ValueError, match="schedule='even'"):
        sample_cli.SampleArguments(model_name_or_path="m", schedule="even")


def test_gumbel_sampling_matches_softmax():
    logits = torch.tensor([[[0.0, 1.0, 2.0, -1.0]]])
    assert sample_tokens(logits, 0.0).item() == 2
    torch.manual_seed(0)
    n, temperature = 20000, 0.7
    draws = sample_tokens(logits.expand(1, n, 4), temperature)[0]
    freq = torch.bincount(draws, minlength=4).double() / n
    p = torch.softmax(logits[0, 0].double() / temperature, -1)
    assert ((freq - p).abs() <= 4 * (p * (1 - p) / n).sqrt() + 1e-9).all()


def test_select_transfer_top_k_and_threshold():
    torch.manual_seed(0)
    conf = torch.rand(3, 10)
    cand = torch.rand(3, 10) > 0.3
    k = torch.tensor([2, 0, 20])
    chosen = select_transfer(conf, cand, k)
    for row in range(3):
        c = torch.where(cand[row], conf[row], float("-inf"))
        n = min(int(k[row]), int(cand[row].sum()))
        assert set(chosen[row].nonzero()[:, 0].tolist()) == set(c.topk(n).indices.tolist())
    fast = select_transfer(conf, cand, None, threshold=0.8)
    best = torch.where(cand, conf, -1.0).argmax(-1)
    expected = cand & (conf > 0.8)
    expected[torch.arange(3), best] = True
    assert torch.equal(fast, expected)
    none = select_transfer(conf, torch.zeros_like(cand), None, threshold=0.5)
    assert not none.any()


def test_guide_and_suppress_closed_forms():
    cond, uncond = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    both = torch.cat([cond, uncond])
    assert torch.equal(guide(cond, 0.0), cond)
    assert torch.allclose(guide(both, 2.0), uncond + 3.0 * (cond - uncond))
    out = suppress(cond, [1, 4])
    assert torch.isinf(out[..., [1, 4]]).all() and torch.equal(out[..., :1], cond[..., :1])


# ---------------------------------------------------------------- errors


def test_misspelled_override_is_a_type_error(a2d):
    model, tok = a2d("qwen3")
    with pytest.raises(TypeError, match="stepz"):
        MDLMSampler(model, tok).sample([[5, 6]], stepz=3)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [(MDLMSamplerConfig, dict(steps=0), "steps=0"),
     (MDLMSamplerConfig, dict(block_size=-2), "block_size=-2"),
     (MDLMSamplerConfig, dict(temperature=-0.5), "temperature=-0.5"),
     (MDLMSamplerConfig, dict(remasking="greedy"), "remasking='greedy'.*low_confidence"),
     (MDLMSamplerConfig, dict(threshold=1.5), "threshold=1.5"),
     (MDLMSamplerConfig, dict(threshold=0.9, remasking="random"), "threshold=0.9"),
     (MDLMSamplerConfig, dict(cfg_scale=-1.0), "cfg_scale=-1.0"),
     (BD3LMSamplerConfig, dict(steps=3, max_new_tokens=128, block_size=32), "steps=3.*4"),
     (BD3LMSamplerConfig, dict(steps_per_block=0), "steps_per_block=0"),
     (BD3LMSamplerConfig, dict(max_new_tokens=0), "max_new_tokens=0")],
)  # fmt: skip
def test_bad_config_raises_value_error_naming_the_value(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_bad_models_and_prompts_are_refused(a2d, small_tokenizer):
    model, tok = a2d("qwen3")
    with pytest.raises(ValueError, match="mask_token_id"):
        BD3LMSampler(model, small_tokenizer)  # not converted: no <|mask|>
    flash = types.SimpleNamespace(config=types.SimpleNamespace(
        _attn_implementation="flash_attention_2"))  # fmt: skip
    with pytest.raises(ValueError, match="flash_attention_2"):
        MDLMSampler(flash, tok)
    context = model.config.max_position_embeddings
    with pytest.raises(ValueError, match=f"exceeds the model context {context}"):
        MDLMSampler(model, tok).sample([[5] * (context - 10)], max_new_tokens=16, steps=16)
    with pytest.raises(ValueError, match="steps=2"):  # validated again after the overrides
        BD3LMSampler(model, tok).sample([[5]], max_new_tokens=16, block_size=4, steps=2)


# ---------------------------------------------------------------- CLIs


@pytest.fixture(scope="module")
def checkpoint(a2d, tmp_path_factory):
    model, tok = a2d("qwen3")
    path = tmp_path_factory.mktemp("a2d-qwen3")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), model, tok


def test_sample_cli_prints_the_sampler_completions(checkpoint, capsys):
    path, model, tok = checkpoint
    argv = [
        "--model_name_or_path",
        path,
        "--algo",
        "mdlm",
        "--prompts",
        "ROMEO:||All:",
        "--prompts",
        "First",
        "--max_new_tokens",
        "8",
        "--steps",
        "8",
        "--block_size",
        "4",
    ]
    assert sample_cli.main(argv) == 0
    printed = capsys.readouterr().out
    prompts = ["ROMEO:", "All:", "First"]
    out = MDLMSampler(model, tok).sample([encode(tok, p) for p in prompts], max_new_tokens=8,
                                         steps=8, block_size=4)  # fmt: skip
    for row, prompt in enumerate(prompts):
        assert f"[Sample {row}] {prompt}\n{sample_cli.completion(tok, out, row)}\n" in printed


def test_chat_cli_keeps_a_multi_turn_conversation(checkpoint, capsys, monkeypatch):
    path, model, tok = checkpoint
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi there\nWho are you?\n"))
    argv = [
        "--model_name_or_path",
        path,
        "--chat_template",
        "True",
        "--max_new_tokens",
        "8",
        "--steps",
        "4",
        "--block_size",
        "4",
        "--frame_delay",
        "0",
    ]
    assert chat_cli.main(argv) == 0
    printed = capsys.readouterr().out
    sampler, history = BD3LMSampler(model, tok), []
    for user in ("Hi there", "Who are you?"):  # the oracle: the whole conversation each turn
        history.append({"role": "user", "content": user})
        ids = sample_cli.encode(tok, history, chat_template=True)
        out = sampler.sample([ids], max_new_tokens=8, steps=4, block_size=4)
        text = sample_cli.completion(tok, out, 0).strip()
        assert f"assistant> {text}" in printed
        history.append({"role": "assistant", "content": text})
    assert printed.count("assistant>") == 2


def test_bd3lm_card_cache_mode_gives_the_same_tokens_at_the_closed_form_cost(a2d):
    """kv_cache="card" (prefix re-encoded per block, cache copied per step) is only slower."""
    model, tok = a2d("llama")
    prompt, bs, new, steps = encode(tok, PROMPTS[1]), 4, 16, 8
    kw = dict(max_new_tokens=new, block_size=bs, steps=steps, suppress_tokens=[tok.eos_token_id])
    runs = {}
    for mode in ("reuse", "card"):
        fed = []  # tokens in each forward call
        hook = model.register_forward_pre_hook(lambda m, args, fed=fed: fed.append(len(args[0][0])))
        try:
            runs[mode] = BD3LMSampler(model, tok).sample([prompt], kv_cache=mode, **kw), sum(fed)
        finally:
            hook.remove()
    (ours, ours_tokens), (card, card_tokens) = runs["reuse"], runs["card"]
    assert torch.equal(ours.sequences, card.sequences)
    start, blocks, block_steps = ours.gen_start, new // bs, steps // (new // bs)
    denoise = blocks * block_steps * bs  # every step runs one block, in both modes
    assert ours_tokens == start + (blocks - 1) * bs + denoise  # each prefix token encoded once
    assert card_tokens == sum(start + b * bs for b in range(blocks)) + denoise
    with pytest.raises(ValueError, match="kv_cache='copy'"):
        BD3LMSamplerConfig(kv_cache="copy")


# ------------------------------------------- a2dkit's choices where dLLM differs (book page)


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
def test_the_mask_token_is_never_a_prediction(a2d, sampler_cls):
    model, tok = a2d("qwen3")
    bias = torch.zeros(1, 512)
    bias[0, tok.mask_token_id] = 100.0  # the model's argmax is <|mask|> everywhere
    out = sampler_cls(Biased(model, bias), tok).sample(
        [encode(tok, PROMPTS[0])], max_new_tokens=8, block_size=4, steps=4
    )
    assert masked_left(out, tok.mask_token_id) == 0  # dLLM's argmax would leave 8 masks


def _record_masks(model):
    masks = []
    hook = model.register_forward_pre_hook(
        lambda m, args, kw: masks.append(kw["attention_mask"]), with_kwargs=True
    )
    return masks, hook


def test_bd3lm_tracks_padding_by_column_not_by_token_id(a2d):
    model, tok = a2d("qwen3")
    long, short = encode(tok, PROMPTS[0], 8), encode(tok, PROMPTS[1], 4)
    long[3] = tok.pad_token_id  # a real token that equals the pad id (here pad = eos)
    masks, hook = _record_masks(model)
    try:
        BD3LMSampler(model, tok).sample([long, short], max_new_tokens=4, block_size=4, steps=2,
                                        suppress_tokens=[tok.eos_token_id])  # fmt: skip
    finally:
        hook.remove()
    prompt = masks[0].bool()  # (B, 1, 8, 8): the prompt pass
    assert prompt[0, 0, -1, 3]  # the pad-id token of the prompt is attended (dLLM: padding)
    assert not prompt[1, 0, -1, :4].any() and prompt[1, 0, -1, 4:].all()  # left pads are not


def test_cfg_is_one_batched_forward_per_step(a2d):
    model, tok = a2d("qwen3")
    masks, hook = _record_masks(model)
    kw = dict(max_new_tokens=8, block_size=8, steps=4)
    try:
        plain = MDLMSampler(model, tok).sample([encode(tok, PROMPTS[0])], **kw)
        n_plain = len(masks)
        guided = MDLMSampler(model, tok).sample([encode(tok, PROMPTS[0])], cfg_scale=1.5, **kw)
    finally:
        hook.remove()
    assert plain.nfe == guided.nfe == n_plain == len(masks) - n_plain == 4  # dLLM: 8 passes
    assert {m.shape[0] for m in masks[n_plain:]} == {2}  # conditional + unconditional rows


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
def test_the_default_shift_is_the_one_the_checkpoint_was_trained_with(a2d, sampler_cls):
    """right_shift_logits=None reads config.right_shift_logits (recorded by the trainers)."""
    model, tok = a2d("qwen3", seed=3)
    prompts, kw = [encode(tok, p) for p in PROMPTS[:2]], dict(max_new_tokens=8, block_size=4)
    sampler = sampler_cls(model, tok)
    unshifted, shifted = (
        sampler.sample(prompts, right_shift_logits=flag, **kw) for flag in (False, True)
    )
    assert not torch.equal(unshifted.sequences, shifted.sequences)  # the flag matters here
    assert torch.equal(sampler.sample(prompts, **kw).sequences, unshifted.sequences)
    model.config.right_shift_logits = True
    try:
        assert torch.equal(sampler.sample(prompts, **kw).sequences, shifted.sequences)
    finally:
        del model.config.right_shift_logits


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
@pytest.mark.parametrize("shift", [False, True])
def test_every_greedy_step_reads_the_logits_the_trainer_scores(a2d, algo, shift):
    """Sampling reads token i's logits where training scored it (right shift: column i - 1,
    BD3LM block starts from the clean x_0 column), so a trained model samples as it was
    trained. Float64, one token per step; every step's choice is recomputed from scratch."""
    model, tok = copy.deepcopy(a2d("qwen3", seed=1))
    model.double()
    prompt, bs = encode(tok, PROMPTS[2], 8), 4
    sampler_cls = {"mdlm": MDLMSampler, "bd3lm": BD3LMSampler}[algo]
    out = sampler_cls(model, tok).sample(
        [prompt], max_new_tokens=12, block_size=bs, steps=12, right_shift_logits=shift,
        suppress_tokens=[tok.eos_token_id], return_history=True,
    )  # fmt: skip
    assert out.gen_start == 8 and len(out.history) == 13  # one token per step, none skipped

    def off(shift: bool = shift, **kw) -> int:
        ref = functools.partial(trained_logits, model, algo=algo, block_size=bs, shift=shift, **kw)
        return steps_off_reference(out.history, ref, tok.mask_token_id, bs)

    assert off() == 0
    # negative controls: the other shift, and (BD3LM) shifting at block starts only
    assert off(shift=not shift) > 0
    if algo == "bd3lm" and shift:
        assert off(block_starts_only=True) > 0


@pytest.mark.parametrize("shift", [False, True])
def test_a_causal_clean_stream_checkpoint_samples_as_it_was_trained(a2d, shift):
    """A checkpoint trained with ``--clean_stream causal`` (config.a2d_clean_stream) has its
    prefix, prompt included, encoded token-causally by the cached sampler, as the trainer's
    causal x_0 half: every greedy step matches that trainer's logits (float64), not BD3LM's."""
    model, tok = copy.deepcopy(a2d("qwen3", seed=1))
    model.double().config.a2d_clean_stream = "causal"
    prompt, bs = encode(tok, PROMPTS[2], 8), 4
    out = BD3LMSampler(model, tok).sample(
        [prompt], max_new_tokens=12, block_size=bs, steps=12, right_shift_logits=shift,
        suppress_tokens=[tok.eos_token_id], return_history=True,
    )  # fmt: skip
    assert len(out.history) == 13  # one token per step

    def off(causal_clean: bool) -> int:
        ref = functools.partial(trained_logits, model, algo="bd3lm", block_size=bs, shift=shift,
                                causal_clean=causal_clean)  # fmt: skip
        return steps_off_reference(out.history, ref, tok.mask_token_id, bs)

    assert off(causal_clean=True) == 0
    assert off(causal_clean=False) > 0  # control: the block-causal prefix reads otherwise
    model.config.a2d_clean_stream = "sideways"
    with pytest.raises(ValueError, match="a2d_clean_stream='sideways'.*'block', 'causal'"):
        BD3LMSampler(model, tok).sample([prompt], max_new_tokens=4, block_size=bs, steps=4)
