# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. The Block Sampler
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/06_the_block_sampler.ipynb)
#
# A BD3LM model (chapter 5) generates **block after block**: inside a block it denoises like
# MDLM, across blocks it is autoregressive. Because a finished block never changes again, its
# keys and values can be cached exactly like an AR model's. This chapter takes
# `BD3LMSampler` apart: the block loop, the KV cache (encoded once, cropped instead of
# copied), batches of prompts of different lengths, end-of-sequence handling per row, and
# what the cache saves compared with the released model card's sampler.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - how `BD3LMSampler` fills a sequence block by block, and how to see it in a trajectory;
# - the three kinds of forward calls of a KV-cached block sampler, checked with a forward hook;
# - how many tokens each forward pass processes, ours against the model card's algorithm, and
#   the measured speed of both on the same model with identical tokens;
# - batched prompts with left padding, per-row EOS handling, and MDLM vs BD3LM side by side;
# - lossless speculative decoding: the BD3LM model drafts blocks, the source AR model verifies
#   them, and the output is the AR model's greedy output token for token.
#
# ## What you'll need
#
# - chapters 4 (sampling MDLM) and 5 (the BD3LM model, cached at `smoke`);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (about a minute; longer the first time,
#   when the MDLM and SFT models of chapters 3 and 7 are trained).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import torch

from a2dkit import data, tutorial, viz
from a2dkit.data import shakespeare
from a2dkit.eval import quality
from a2dkit.samplers import BD3LMSampler, BD3LMSamplerConfig, MDLMSampler, MDLMSamplerConfig
from a2dkit.tutorial import curves

torch.manual_seed(0)
model, tokenizer = tutorial.load_diffusion_model(cfg, "bd3lm")  # trained in chapter 5
sampler = BD3LMSampler(model, tokenizer)

# %% [markdown]
# ## Block after block
#
# The sampler draws from the block factorization of chapter 5,
# $p(x) = \prod_b p(x^b \mid x^{<b})$. The prompt is left-padded to a multiple of the block
# size $L'$; then, for each new block, it appends $L'$ masks and runs `steps_per_block`
# denoising steps. Each step predicts every masked position of the block from the block and
# the clean prefix, and commits the $k$ most confident predictions (`low_confidence`
# remasking, chapter 4). A block is finished when it has no mask left; it never changes again.

# %%
config = BD3LMSamplerConfig(  # in the blocks it was trained with (chapter 5)
    max_new_tokens=cfg.sampling.max_new_tokens, block_size=cfg.pretrain.block_size,
    steps=cfg.sampling.steps, temperature=cfg.sampling.temperature,
)  # fmt: skip
rows = curves.packed_rows(cfg, tokenizer, split="test")[: cfg.pretrain.batch_size]["input_ids"]
prompt = rows[0][: cfg.pretrain.max_length // 4]  # a held-out tiny-shakespeare row (chapter 4)
print(repr(tokenizer.decode(prompt)))
out = sampler.sample([prompt], config)
print(f"{config.num_blocks} blocks x {config.block_steps} steps; {out.nfe} forward calls")
print(repr(tokenizer.decode(out.sequences[0, out.gen_start :])))

# %% [markdown]
# Which step committed each token (`viz.commit_steps`): every token of block $b$ is committed
# before any token of block $b + 1$, the "staircase" of the trajectory below.

# %%
commits = viz.commit_steps(out, tokenizer.mask_token_id)[0, out.gen_start : out.gen_end]
by_block = commits.view(-1, config.block_size)  # (num blocks, L')
print(by_block)
assert (by_block[:-1].amax(1) < by_block[1:].amin(1)).all()  # blocks strictly in order
assert not (out.sequences == tokenizer.mask_token_id).any()

# %%
viz.plot_trajectory(out, tokenizer)

# %% [markdown]
# Is it words? All of chapter 4's held-out tiny-shakespeare prompts (the first
# `cfg.pretrain.max_length // 4` tokens of each row; the trajectory above continued the first),
# continued block by block, and the share of the words that
# tiny-shakespeare's training text uses (`quality.known_word_rate`). At `laptop` the notebook
# asserts, as chapter 4 does for MDLM, that the samples are mostly real words: 60 steps of
# right-shifted BD3LM pretraining in blocks of `cfg.pretrain.block_size` write them (the tiny
# `smoke` model is not expected to).

# %%
prompts = [r[: cfg.pretrain.max_length // 4] for r in rows]
held_out = sampler.sample(prompts, config, return_history=False)
texts = tokenizer.batch_decode(held_out.sequences[:, held_out.gen_start :],
                               skip_special_tokens=True)  # fmt: skip
for text in texts:
    print(repr(text))
vocabulary = set(quality.words(shakespeare.tiny_shakespeare_text("train")))
known, per_sample = quality.known_word_rate(texts, vocabulary)
print(f"{known:.0%} of {per_sample:.1f} words per sample are tiny-shakespeare words")
if cfg.name == "laptop":
    assert known >= 0.75 and per_sample >= 4

# %% [markdown]
# ## The KV cache
#
# Finished blocks are clean and never change, so their keys and values can be computed once.
# `BD3LMSampler` makes three kinds of forward calls, all through `_forward` with the
# block-causal mask of chapter 2:
#
# 1. **encode the prompt** once, appending its keys/values to the cache;
# 2. **a denoising step**: only the current block runs, attending to the cache. Transformers
#    appends the block's keys/values to the cache even so (a `torch.cat`), so the sampler
#    *crops* them off again, which only narrows a view;
# 3. **extend**: a finished block runs once more, clean, and its keys/values stay.

# %%
viz.show_source(BD3LMSampler._forward)

# %% [markdown]
# A forward pre-hook records, for every call, which cache object it got, how many tokens the
# cache held, how many tokens were fed, and whether they contained masks (a denoising step)
# or not (encoding).

# %%
calls = []  # (cache id, cached tokens, tokens fed, contains a mask)


def record(module, args, kwargs):
    cache, ids = kwargs["past_key_values"], args[0]  # ids: (B, tokens)
    masked = bool((ids == tokenizer.mask_token_id).any())
    calls.append((id(cache), cache.get_seq_length(), ids.shape[1], masked))


hook = model.register_forward_pre_hook(record, with_kwargs=True)
out = sampler.sample([prompt], config, return_history=False)
hook.remove()
print(*calls[:4], "...", *calls[-3:], sep="\n")

# %% [markdown]
# Three claims, checked on the record: one cache object serves the whole generation (it is
# never copied); the encoding calls tile the sequence, each token encoded **once** (the last
# block is never needed as context); and every denoising step finds the cache exactly at the
# start of its block, so the crop undid the previous step's append.

# %%
assert len({cache_id for cache_id, *_ in calls}) == 1
encoded = 0  # tokens whose keys/values the cache keeps
for _, cached, fed, masked in calls:
    assert cached == encoded  # a step finds the cache as the last encoding call left it
    encoded += 0 if masked else fed
assert encoded == out.gen_end - config.block_size  # every token once, but the last block

# %% [markdown]
# ## Forward tokens: ours and the model card's
#
# The released Tiny-A2D BD3LM model card samples differently: at every block it re-encodes the
# **whole prefix** into a fresh cache, and at every denoising step it **deep-copies** that
# cache (because the model appends to it), on top of the append's own `torch.cat`. With a
# prompt padded to $P$ tokens, $n$ blocks of $L'$ tokens and $S$ steps per block, the tokens
# pushed through the model are
#
# $$\text{ours} = P + (n - 1) L' + n S L', \qquad
#   \text{card} = \sum_{b=0}^{n-1} (P + b L') + n S L' = nP + \tfrac{n(n-1)}{2} L' + n S L'.$$
#
# The denoising term $nSL'$ is the same; the prefix term grows linearly for us and
# quadratically for the card. (The deep copies add memory traffic on top, which no token count
# shows.)


# %%
def forward_tokens(p, n, s, block, algo):
    """Tokens fed to the model: the closed forms above."""
    prefix = p + (n - 1) * block if algo == "ours" else n * p + n * (n - 1) // 2 * block
    return prefix + n * s * block


P, n = out.gen_start, (out.gen_end - out.gen_start) // config.block_size
ours = sum(fed for _, _, fed, _ in calls)
assert ours == forward_tokens(P, n, config.block_steps, config.block_size, "ours")
print(f"measured {ours} tokens; the card's algorithm would feed "
      f"{forward_tokens(P, n, config.block_steps, config.block_size, 'card')}")  # fmt: skip

# %% [markdown]
# The gap grows with the length of the generation:

# %%
for blocks in (4, 16, 64):
    args = (P, blocks, config.block_steps, config.block_size)
    o, c = forward_tokens(*args, "ours"), forward_tokens(*args, "card")
    print(f"{blocks:3d} blocks of {config.block_size}: ours {o:7d}, card {c:7d}, ratio {c / o:.2f}")

# %% [markdown]
# ## Measured: both algorithms on the same model
#
# `kv_cache="card"` switches the sampler to the card's cache handling (prefix re-encoded per
# block, cache deep-copied per step) and changes nothing else, so the two can be timed on the
# same model, prompt and machine. That the default sampler gives the card's exact tokens is
# tested separately, against an independent re-implementation of the card's `generate`, on a
# tiny model of every supported family (`tests/samplers/test_samplers.py`).


# %%
def run(mode, new):
    """(output, seconds, forward tokens) of one greedy generation of ``new`` tokens."""
    fed = []
    hook = model.register_forward_pre_hook(lambda m, args: fed.append(args[0].shape[1]))
    start = time.perf_counter()
    o = sampler.sample([prompt], config, kv_cache=mode, max_new_tokens=new, steps=new,
                       return_history=False)  # fmt: skip
    seconds = time.perf_counter() - start
    hook.remove()
    return o, seconds, sum(fed)


# %%
new = 4 * cfg.sampling.max_new_tokens  # a longer generation: 4x the blocks
runs = {mode: run(mode, new) for mode in ("reuse", "card")}
for mode, (o, seconds, fed) in runs.items():
    print(f"{mode:5s}: {new / seconds:7.1f} tokens/s, {o.nfe} forward calls, {fed} tokens fed")
speedup = runs["card"][1] / runs["reuse"][1]
print(f"speedup {speedup:.2f}x")

# %%
(ours_out, _, ours_fed), (card_out, _, card_fed) = runs["reuse"], runs["card"]
assert torch.equal(ours_out.sequences, card_out.sequences)  # identical tokens
blocks = (ours_out.gen_end - ours_out.gen_start) // config.block_size
args = (ours_out.gen_start, blocks, new // (new // config.block_size), config.block_size)
assert (ours_fed, card_fed) == (forward_tokens(*args, "ours"), forward_tokens(*args, "card"))

# %% [markdown]
# At `smoke` the model is so small that each forward call costs about the same whatever its
# length, so the measured speedup is modest and noisy; it grows with the model and the
# generation length. `bench/bench_sampler.py` runs the same comparison against the card's
# algorithm on a 22M-parameter model (256 new tokens, block 32).
#
# ## Fewer forward passes than the AR model: threshold decoding
#
# The AR model it came from needs one forward pass per token. BD3LM needs `steps_per_block`
# per block plus one cache write; with a confidence threshold (Fast-dLLM: commit every mask
# surer than the threshold, at least one per step) a confident model fills a block in a few
# passes. The chat CLI takes it as `--threshold 0.9`.

# %%
per_token = {}
for threshold in (None, 0.9, 0.05):  # the smoke PT model is rarely sure: 0.05 pays off
    o = sampler.sample([prompt], config, threshold=threshold, return_history=False)
    per_token[threshold] = o.nfe / (o.gen_end - o.gen_start)
    print(f"threshold={threshold}: {per_token[threshold]:.3f} forward passes per token "
          f"(AR greedy: 1.000)")  # fmt: skip
assert per_token[0.05] < per_token[None]  # several tokens per pass, deterministic at smoke

# %% [markdown]
# ## Batches: left padding and EOS per row
#
# Prompts of different lengths are **left**-padded to a common multiple of the block size, so
# the generated blocks of all rows line up in the same columns; the padding is masked out of
# attention and the position ids skip it, so a row's tokens do not depend on its neighbours.
# A row that produces EOS is finished at the end of that block: its later blocks are padding,
# and sampling stops as soon as every row is finished. To see EOS we need a model that ends
# its answers: the BD3LM SFT model of chapter 7, on its chat prompts, in the blocks it was
# trained with (`cfg.sft.block_size`).

# %%
sft_model, sft_tokenizer = tutorial.load_diffusion_model(cfg, "bd3lm", sft=True)
sft_config = dataclasses.replace(config, block_size=cfg.sft.block_size)
test = data.load_dataset_args(cfg.sft.dataset_args)["test"]
chats = data.chat_prompts(test, sft_tokenizer)[:4]
print("prompt lengths:", [len(p) for p in chats])
sft_sampler = BD3LMSampler(sft_model, sft_tokenizer)
batch = sft_sampler.sample(chats, sft_config)
for row in batch.sequences:
    print(repr(sft_tokenizer.decode(row[batch.gen_start :], skip_special_tokens=False)[:60]))

# %% [markdown]
# The left padding, and the rule for finished rows: everything after the block holding a
# row's first EOS is padding, and generation stops after the block in which the last row
# finished (`gen_end`).

# %%
pad, eos, bs = sft_sampler.pad_id, sft_tokenizer.eos_token_id, sft_config.block_size
# the leading run of pad ids (the pad id can occur inside a prompt: SmolLM2 pads with <|im_end|>)
pads = [int((row[: batch.gen_start] != pad).int().argmax()) for row in batch.sequences]
print("left pads per row:", pads)
generated = batch.sequences[:, batch.gen_start :]  # (B, max_new_tokens)
ends = []  # per row: the column after its EOS block (None if it never finished)
for row in generated:
    hits = (row == eos).nonzero()
    ends.append(None if len(hits) == 0 else (hits[0, 0].item() // bs + 1) * bs)
print("rows finish at generated column:", ends, "| gen_end - gen_start:",
      batch.gen_end - batch.gen_start)  # fmt: skip

# %%
assert pads == [batch.gen_start - len(p) for p in chats]
for row, end in zip(generated, ends, strict=True):
    assert end is None or (row[end:] == pad).all()
if None not in ends:  # every row finished: sampling stopped after the last one's block
    assert batch.gen_end - batch.gen_start == max(ends)

# %% [markdown]
# Batching changes nothing: each row alone gives the same tokens (when it starts in the same
# column, i.e. its padded prompt length is the batch's).

# %%
same_start = 0
for row, chat in zip(batch.sequences, chats, strict=True):
    alone = sft_sampler.sample([chat], sft_config)
    if alone.gen_start == batch.gen_start:
        same_start += 1
        assert torch.equal(row[batch.gen_start :], alone.sequences[0, alone.gen_start :])
assert same_start > 0

# %% [markdown]
# The viewer replays the batch step by step (pick a row with the selector; grey boxes are
# masks, colours are the step at which a token was committed).

# %%
viz.DenoisingViewer(batch, sft_tokenizer, title="BD3LM, batch of chat prompts")

# %% [markdown]
# ## MDLM vs BD3LM, side by side
#
# The same prompt and the same number of steps, sampled by the MDLM model of chapter 3 (one
# block: every position can be committed at any step) and by the BD3LM model (block by block).
# Drag the slider: MDLM fills the canvas everywhere at once, BD3LM fills it left to right, one
# block at a time.

# %%
mdlm, mdlm_tokenizer = tutorial.load_diffusion_model(cfg, "mdlm")  # trained in chapter 3
mdlm_config = MDLMSamplerConfig(
    max_new_tokens=cfg.sampling.max_new_tokens, block_size=cfg.sampling.max_new_tokens,
    steps=cfg.sampling.steps, temperature=cfg.sampling.temperature,
)  # fmt: skip
mdlm_out = MDLMSampler(mdlm, mdlm_tokenizer).sample([prompt], mdlm_config)
bd3lm_out = sampler.sample([prompt], config)
viewer = viz.DenoisingViewer.side_by_side(
    {"MDLM": (mdlm_out, mdlm_tokenizer), "BD3LM": (bd3lm_out, tokenizer)}
)
viewer  # noqa: B018 (displays the widget)

# %%
assert viewer.render(0) != viewer.render(viewer.num_steps - 1)  # the slider changes the view
for o, tok in ((mdlm_out, mdlm_tokenizer), (bd3lm_out, tokenizer)):
    assert not (o.sequences == tok.mask_token_id).any()  # no mask left in either

# %% [markdown]
# The static form of the same comparison (used where no kernel runs the widget):

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
viz.plot_trajectory(mdlm_out, mdlm_tokenizer, ax=axes[0])
viz.plot_trajectory(bd3lm_out, tokenizer, ax=axes[1])
axes[0].set_title("MDLM: one block")
axes[1].set_title(f"BD3LM: blocks of {config.block_size}")

# %% [markdown]
# ## Speculative decoding: lossless, with the AR model as verifier
#
# Threshold decoding buys forward passes with quality: a token committed because it looked
# sure enough may not be the one the model would have picked later. Speculative decoding
# (Leviathan et al. 2023) gets several tokens per forward pass **without** that trade. A cheap
# *drafter* proposes $k$ tokens after the committed prefix; the AR model, the *verifier*,
# scores all of them in one forward pass with its KV cache, keeps the longest prefix that
# matches its own greedy choices, and adds its own token at the first mismatch (or after a
# fully accepted draft); its cache is cropped back to what was kept. Every committed token is
# one the verifier would have chosen itself, so the output is token for token the verifier's
# greedy `generate`, whatever the drafter proposes. The drafter decides only the speed: each
# verifier forward commits between 1 and $k + 1$ tokens.
#
# A converted model is the natural drafter for its own source: the same tokenizer (plus the
# mask token), and a BD3LM model drafts a whole block at once, which is what it was trained
# to do. Here the scale's source AR model (`cfg.source.model`) verifies blocks of
# `cfg.pretrain.block_size` tokens drafted by this chapter's BD3LM model
# (`a2dkit.samplers.speculative_decode`, with `sampler_drafter`), on two held-out prompts.
# The verifier runs in float64 for the check: in float32 its $(k + 1)$-token forward and
# `generate`'s one-token forwards round differently, and a near tie could flip an argmax.

# %%
import copy

from a2dkit.samplers import SpeculativeStats, sampler_drafter, speculative_decode

source, source_tokenizer, _ = tutorial.load_source_model(cfg)
verifier = copy.deepcopy(source).double()  # exact comparison with generate (see above)
drafter_vocab = {t: i for t, i in tokenizer.get_vocab().items() if t != tokenizer.mask_token}
assert drafter_vocab == source_tokenizer.get_vocab()  # one vocabulary, same ids
spec_prompts = [list(r[: cfg.pretrain.max_length // 4]) for r in rows[:2]]
eos, draft_length = tokenizer.eos_token_id, config.block_size


def greedy(p: list[int]) -> list[int]:
    """The verifier's own greedy decoding: one forward pass per token."""
    x = torch.tensor([p], device=verifier.device)
    out = verifier.generate(x, max_new_tokens=config.max_new_tokens, do_sample=False,
                            eos_token_id=eos, pad_token_id=eos)  # fmt: skip
    return out[0, len(p) :].tolist()


def speculate(stats: SpeculativeStats, **draft_options) -> list[list]:
    """Every prompt decoded speculatively, checked against ``greedy``; the traces."""
    drafter = sampler_drafter(sampler, stats, **draft_options)  # one block per draft
    traces = []
    for p in spec_prompts:
        trace = []
        got = speculative_decode(verifier, drafter, p, config.max_new_tokens, draft_length,
                                 eos_token_id=eos, stats=stats, trace=trace)  # fmt: skip
        assert got == greedy(p), "speculative decoding must be the verifier's greedy output"
        traces.append(trace)
    return traces


runs = {"fixed steps": {"steps": config.block_steps}, "threshold 0.05": {"threshold": 0.05}}
spec_stats, spec_traces = {}, {}
for name, options in runs.items():
    spec_stats[name] = SpeculativeStats()
    spec_traces[name] = speculate(spec_stats[name], **options)
    s = spec_stats[name]
    print(f"drafts of {draft_length}, {name}: identical to greedy generate on all "
          f"{len(spec_prompts)} prompts; {s.accepted_per_verifier_forward:.2f} drafted tokens "
          f"accepted per verifier forward, {s.tokens / s.verifier_forwards:.2f} tokens per "
          f"verifier forward, {s.forwards_per_token:.2f} forwards per token (drafter "
          f"{s.drafter_forwards} + verifier {s.verifier_forwards}; AR generate: 1.00)")  # fmt: skip
    print("  accepted length: times =", dict(sorted(s.accepted.items())))

# %% [markdown]
# Both drafters give the same tokens, the verifier's: only the counts differ. The verifier
# runs fewer forwards than `generate` whenever drafts are accepted, but every draft costs the
# drafter forwards too. At `smoke` the drafter (60 pretraining steps) agrees with its source
# on about one drafted token per three verifier forwards, so drafting costs far more than it
# saves. The speed has to come from a drafter trained to agree with its source (chapter 11's
# recipes), one sure of more tokens per pass (the threshold row), or one forward that
# verifies block $j$ and drafts block $j + 1$.
#
# That last one needs no second model. The BD3LM model is its own verifier in causal mode
# (`causal_mode`: its source's AR attention, which a checkpoint trained with chapter 11's
# joint AR loss keeps), and one forward can read [pending token, draft $d_1..d_k$, then $k + 1$
# blocks of masks]: the draft's rows attend causally, so they verify it exactly as the AR mode
# would; mask block $a$ attends to the pending token and $d_1..d_a$ and to itself, a block after
# a clean prefix, so it drafts what follows if the verifier accepts exactly $a$ tokens (TiDAR's
# pre-drafts; `a2dkit.samplers.one_pass`, the scheme of TiDAR, I-DLM and Nemotron-Labs-Diffusion).
# Whatever is accepted, the block drafted on exactly that prefix is the next draft, so every
# forward verifies a draft and commits at least one token, and no forward is the drafter's
# alone. Only the verified columns stay in the cache. A forward reads $(k + 1)(k + 2)$ columns:
# nearly free on a memory-bound GPU, not on a CPU. Its output is the
# model's own AR-mode greedy decoding, checked here in float64.
#
# Its first drafted token sits two positions past the last known one, so it is often wrong,
# but the verifier's token is often the block's second or third choice. `candidates=m` verifies
# the block's top $m$ for that position side by side, as a tree (SpecInfer's tree attention:
# each candidate sees its ancestors, never its siblings), each with its own pre-draft block;
# the branch the verifier follows stays in the cache. On SmolLM2 (`book/results.md`) a tree of
# 4 raised the tokens per forward from 1.33 to 1.62, lossless as before.

# %%
from a2dkit.models import causal_mode
from a2dkit.samplers.one_pass import one_pass_self_decode

model64 = copy.deepcopy(model).double()
one_pass, tree = SpeculativeStats(), SpeculativeStats()
for p in spec_prompts:
    got = one_pass_self_decode(model64, p, config.max_new_tokens, draft_length,
                               tokenizer.mask_token_id, eos_token_id=eos, stats=one_pass)
    got_tree = one_pass_self_decode(model64, p, config.max_new_tokens, draft_length,
                                    tokenizer.mask_token_id, candidates=4, eos_token_id=eos,
                                    stats=tree)  # the first drafted token's top 4, as a tree
    with causal_mode(model64):  # the model's own AR mode, one forward per token
        want = model64.generate(torch.tensor([p]), max_new_tokens=config.max_new_tokens,
                                do_sample=False, eos_token_id=eos, pad_token_id=eos)
    assert got == got_tree == want[0, len(p) :].tolist(), "one-pass must be the AR output"
for name, s in (("one-pass", one_pass), ("one-pass, tree of 4", tree)):
    print(f"{name}, drafts of {draft_length}: identical to the model's AR-mode generate on all "
          f"{len(spec_prompts)} prompts; {s.accepted_per_verifier_forward:.2f} drafted tokens "
          f"accepted per forward, {s.forwards_per_token:.2f} forwards per token "
          f"(drafter {s.drafter_forwards})")  # fmt: skip

# %% [markdown]
# What do the mask blocks read? The verified columns go into a *causal* cache: the prefix as the
# AR model encodes it. BD3LM trains its blocks after a *block-causal* clean stream (chapter 5's
# staircase: each clean block attends to itself bidirectionally), so a BD3LM checkpoint drafts
# here under an attention it never trained with. TiDAR trains the clean half token-causally
# instead (`--clean_stream causal`): then a block's training logits are exactly the ones
# one-pass reads, and the joint AR loss comes from the same forward (the clean half's logits
# are the AR mode's), so training costs one forward instead of two. Both staircases, and the
# check in float64 on this model: block 1 of an 8-token sequence, fully masked.

# %%
from transformers import DynamicCache

from a2dkit.diffusion import attention, blocks
from a2dkit.samplers.one_pass import one_pass_layout

fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
for ax, causal_clean in zip(axes, (False, True), strict=True):
    viz.plot_mask(attention.staircase_mask(8, 4, causal_clean=causal_clean), ax=ax, split=8,
                  title=f"clean stream: {'causal (TiDAR)' if causal_clean else 'block (BD3LM)'}")
plt.show()

x = torch.tensor([spec_prompts[0][:8]])
xt = torch.cat([x[:, :4], torch.full((1, 4), tokenizer.mask_token_id)], dim=1)
with torch.no_grad():
    cache = DynamicCache()
    with causal_mode(model64):  # the verified prefix x_0..x_2, causal
        model64(input_ids=x[:, :3], past_key_values=cache, use_cache=True)
    layout, positions = one_pass_layout(past=3, verify=1, width=4)  # x_3, then 4 masks
    drafted = model64(input_ids=xt[:, 3:], position_ids=positions, attention_mask=layout,
                      past_key_values=cache, use_cache=True).logits[0, 1:]
    gaps = {}
    for causal_clean in (False, True):
        ids, pos, mask = blocks.bd3lm_inputs(xt, x, 4, causal_clean)
        trained = model64(input_ids=ids, position_ids=pos, attention_mask=mask).logits[0, 4:8]
        gaps[causal_clean] = (drafted - trained).abs().max().item()
print(f"one-pass pre-draft vs training logits, max |gap|: block-causal clean stream "
      f"{gaps[False]:.1e}, causal clean stream {gaps[True]:.1e}")
assert gaps[True] < 1e-9 < gaps[False], gaps

# %% [markdown]
# The same decoding runs from the command line (`sample --speculative source|self|one-pass
# --draft_length 8`; several prompts are verified as one padded batch) and in lm-eval
# (`--model_args ...,speculative=source`); `bench/bench_speculative.py` measures every mode
# of chapter 11's drafters, greedy and sampled, and `bench/bench_verify_cost.py` what a
# one-pass forward costs against a one-token step on your machine: the tokens per forward a
# drafter must reach before one-pass is faster than plain AR decoding there.
#
# The viewer replays the first prompt forward by forward: the drafter's block, the accepted
# prefix (green), the rejected rest (red, struck through) and the verifier's own token
# (orange); tokens committed by earlier forwards are drawn lighter.

# %%
first = spec_traces["fixed steps"][0]
spec_viewer = viz.SpeculationViewer(first, tokenizer, prompt=spec_prompts[0],
                                    title=f"{cfg.source.model} verifies BD3LM drafts")  # fmt: skip
assert spec_viewer.render(0) != spec_viewer.render(spec_viewer.num_steps - 1)
assert [t for step in first for t in step.committed] == greedy(spec_prompts[0])
spec_viewer  # noqa: B018 (displays the widget)

# %% [markdown]
# ## Summary
#
# - `BD3LMSampler` denoises one block at a time; a finished block never changes, so its keys
#   and values are cached.
# - The prefix is encoded once and extended block by block; during a block's steps only the
#   block runs, and the cache is cropped back after each step instead of being copied. A
#   forward hook proves all three properties on a real run.
# - Against the model card's algorithm (prefix re-encoded per block, cache copied per step)
#   the tokens are identical and the prefix cost drops from quadratic to linear in the number
#   of blocks.
# - Batches are left-padded to a block multiple; a row that emits EOS is padded from the next
#   block on, and sampling stops when every row is finished.
# - Speculative decoding with the source AR model as verifier is lossless: the BD3LM model
#   drafts a block, the verifier keeps what it would have chosen and adds its own token, so the
#   output equals its greedy `generate`; the drafter only sets the tokens per forward.
#
# ## Exercises
#
# 1. Use `forward_tokens` to find the number of blocks at which the card's algorithm feeds
#    twice as many tokens as ours, for this scale's prompt, block size and steps.
# 2. Sample with `threshold=0.9` (Fast-dLLM decoding) and compare `nfe` and the text with the
#    fixed-step run. Why can it never need more forward calls when `steps == max_new_tokens`?
# 3. Make the cache mistake on purpose: copy `_forward` into a subclass without the `crop`
#    call. Which assert of the KV-cache section fails, and what happens to the samples?
# 4. Set `draft_length` to 1, 4 and `cfg.pretrain.block_size` and rerun `speculate`: how do
#    accepted tokens per verifier forward and forwards per token move? What does a drafter
#    that always returns the verifier's own tokens give (the bound: `k + 1` per forward)?
#
# ## References
#
# - Arriola et al., *Block Diffusion: Interpolating Between Autoregressive and Diffusion
#   Language Models* (BD3LM), arXiv 2503.09573 (§3, sampling with a KV cache).
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM),
#   arXiv 2406.07524.
# - Nie et al., *Large Language Diffusion Models* (LLaDA, low-confidence remasking),
#   arXiv 2502.09992.
# - Wu et al., *Fast-dLLM: Training-free Acceleration of Diffusion LLM by Enabling KV Cache and
#   Parallel Decoding*, arXiv 2505.22618.
# - Leviathan, Kalman and Matias, *Fast Inference from Transformers via Speculative Decoding*,
#   arXiv 2211.17192 (§2.3, greedy and sampled verification).
