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
# # 4. Sampling MDLM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/04_sampling_mdlm.ipynb)
#
# An MDLM generates by running its forward process backwards: start from a canvas of
# `<|mask|>` tokens after the prompt, predict every masked token at once, keep a few of the
# predictions, and repeat until no mask is left. Which predictions to keep, how many per step,
# and in what order along the sequence are the knobs of the sampler. This chapter turns each
# knob on the model trained in chapter 3 and **measures** what it does.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - the reverse step: how many tokens to reveal (from the schedule) and which (remasking);
# - `low_confidence` vs `random` remasking, and how quality depends on the number of steps;
# - semi-autoregressive blocks, temperature (Gumbel-max) and threshold (Fast-dLLM) decoding;
# - how to watch a sampler work: `viz.DenoisingViewer` and `viz.plot_trajectory`.
#
# ## What you'll need
#
# - chapter 3 (its MDLM checkpoint is cached at `smoke`; this notebook trains it if missing);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (well under a minute).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import math

import matplotlib.pyplot as plt
import torch

from a2dkit import tutorial, viz
from a2dkit.data import shakespeare
from a2dkit.diffusion import denoise, schedules
from a2dkit.eval import quality
from a2dkit.samplers import MDLMSampler, MDLMSamplerConfig
from a2dkit.tutorial import curves

torch.manual_seed(0)
model, tokenizer = tutorial.load_diffusion_model(cfg, "mdlm")  # chapter 3's checkpoint
source, _, _ = tutorial.load_source_model(cfg)  # the AR model of chapter 1: our judge
MASK = tokenizer.mask_token_id

# %% [markdown]
# The prompts are the first `cfg.pretrain.max_length // 4` tokens of held-out tiny-shakespeare
# rows, one batch of `cfg.pretrain.batch_size`. Every setting below continues the same prompts
# with the sizes of `cfg.sampling`. The base setting denoises the whole continuation as one
# block at `smoke`, and in semi-autoregressive blocks of `cfg.sampling.block_size` at `laptop`
# (LLaDA; the section "Semi-autoregressive blocks" compares the two). The sampler reads
# `right_shift_logits` from the checkpoint.

# %%
rows = curves.packed_rows(cfg, tokenizer, split="test")
prompt_len = cfg.pretrain.max_length // 4
prompts = [r[:prompt_len] for r in rows[: cfg.pretrain.batch_size]["input_ids"]]
base = MDLMSamplerConfig(
    max_new_tokens=cfg.sampling.max_new_tokens,
    block_size=cfg.sampling.block_size or cfg.sampling.max_new_tokens,  # None: one block
    steps=cfg.sampling.steps, temperature=cfg.sampling.temperature,
)  # fmt: skip
sampler = MDLMSampler(model, tokenizer)
print(repr(tokenizer.decode(prompts[0])))

# %% [markdown]
# ## The reverse step
#
# Between times $t > s$ a masked token is revealed with probability
# $\frac{\alpha(s) - \alpha(t)}{1 - \alpha(t)}$ (MDLM §3). With $S$ steps on the grid
# $t_j = 1 - j/S$ this fixes **how many** tokens each step commits; the *remasking* rule
# decides **which**: `low_confidence` keeps the predictions the model is surest of (LLaDA),
# `random` keeps random ones (the MDLM posterior). Committed tokens never change.

# %%
viz.show_source(denoise.denoise_step)

# %% [markdown]
# By hand, linear schedule, 32 masks, 4 steps: step 1 reveals $\frac{0.25 - 0}{1 - 0} = 1/4$
# of 32 = 8, step 2 reveals $\frac{0.5 - 0.25}{1 - 0.25} = 1/3$ of the 24 left = 8, step 3
# half of 16 = 8, the last step the final 8: **an even split**. The cosine schedule front-loads:
# its first step already reveals $\alpha(3/4) = \cos(3\pi/8) \approx 38\%$ of the masks
# ($32 \times 0.383 \approx 12$), and the last step only a few.

# %%
even = denoise.num_transfer_tokens(torch.tensor([32]), 4)  # no schedule: an even split
linear = denoise.num_transfer_tokens(torch.tensor([32]), 4, schedules.make_schedule("linear"))
cosine = denoise.num_transfer_tokens(torch.tensor([32]), 4, schedules.make_schedule("cosine"))
print("linear:", linear.tolist(), " cosine:", cosine.tolist())
assert linear.tolist() == even.tolist() == [[8, 8, 8, 8]]
assert cosine.sum() == 32 and cosine[0, 0] == round(32 * math.cos(3 * math.pi / 8))

# %% [markdown]
# ## A first sample
#
# `MDLMSampler.sample(prompts, config)` returns `SamplerOutput(sequences, history, nfe,
# gen_start)`: the final canvases, every intermediate canvas, and the number of forward passes.

# %%
out = sampler.sample(prompts, base)
print(f"{out.nfe} forward passes, {len(out.history)} canvases")
texts = tokenizer.batch_decode(out.sequences[:, out.gen_start :], skip_special_tokens=True)
for text in texts:
    print(repr(text))

# %%
gen = out.sequences[:, out.gen_start :]
assert not (gen == MASK).any()  # every mask is filled
assert out.sequences[:, : out.gen_start].tolist() == prompts  # the prompt never changes
assert out.nfe == cfg.sampling.steps and len(out.history) == cfg.sampling.steps + 1

# %% [markdown]
# Is it words? `quality.known_word_rate` gives the share of the samples' words that
# tiny-shakespeare's training text uses, and the words per sample: line breaks and colons have
# no words, invented fragments are not in the vocabulary. At `laptop` the notebook asserts
# that the samples are mostly real words (the tiny `smoke` model is not expected to write any).

# %%
vocabulary = set(quality.words(shakespeare.tiny_shakespeare_text("train")))
known, per_sample = quality.known_word_rate(texts, vocabulary)
print(f"{known:.0%} of {per_sample:.1f} words per sample are tiny-shakespeare words")
if cfg.name == "laptop":
    assert known >= 0.75 and per_sample >= 4

# %% [markdown]
# Watch it denoise. Drag the slider or press play (on the book's page too: the viewer carries
# its frames and plays without a kernel); each token is coloured by the step that committed it,
# masks are grey, and the count of remaining masks is shown. `plot_trajectory` draws the same
# thing as one step × position image.

# %%
viz.DenoisingViewer(out, tokenizer, prompt_len=prompt_len, title="low_confidence")

# %%
viz.plot_trajectory(out.history, tokenizer, row=0)

# %% [markdown]
# The same trajectory as an animated GIF (`viz.animate` draws one frame per step; it plays
# anywhere, the book included, with no kernel and no JavaScript).

# %%
from IPython.display import Image

gif = cfg.output_dir("figures", "mdlm_denoising.gif")
gif.parent.mkdir(parents=True, exist_ok=True)
viz.animate(out.history, tokenizer, row=0, path=gif, fps=4)
Image(filename=str(gif))

# %% [markdown]
# ## How good is a sample? Ask the AR model
#
# A cheap, checkable yardstick (MDLM's "generative perplexity"): the source AR model's
# negative log-likelihood of the generated continuation, in nats per token (lower = more
# plausible to the AR model), plus the fraction of distinct tokens (low = repetitive). For
# scale, the true held-out continuation of the same prompts:

# %%
def judge(output):
    """Mean AR NLL and distinct ratio of a SamplerOutput's continuations (plotting glue)."""
    seqs, start = output.sequences, output.gen_start
    nll = quality.continuation_nll(source, seqs, start).mean().item()
    return nll, quality.distinct_ratio(seqs, start).mean().item()


# %%
span = prompt_len + cfg.sampling.max_new_tokens
truth = torch.tensor([r[:span] for r in rows[: cfg.pretrain.batch_size]["input_ids"]])  # (B, span)
reference = quality.continuation_nll(source, truth, prompt_len).mean().item()
print(f"true continuation: AR NLL {reference:.3f};  first sample: {judge(out)[0]:.3f}")

# %% [markdown]
# ## Remasking and the number of steps
#
# Fewer steps = more tokens committed in parallel per forward pass. Tokens decoded in the same
# step are drawn independently of each other, so quality should fall as steps shrink. We sweep
# halvings of `cfg.sampling.steps` for both remasking rules (at least one step per block).

# %%
halvings = [cfg.sampling.steps // 2**k for k in range(4)]
step_grid = [steps for steps in halvings if steps >= base.num_blocks]
sweep = {}
for remasking in ("low_confidence", "random"):
    for steps in step_grid:
        torch.manual_seed(0)
        sweep[remasking, steps] = judge(sampler.sample(prompts, base, steps=steps,
                                                       remasking=remasking))  # fmt: skip
        print(f"{remasking:15s} steps={steps:4d}  NLL {sweep[remasking, steps][0]:.3f}  "
              f"distinct {sweep[remasking, steps][1]:.3f}")  # fmt: skip

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for remasking in ("low_confidence", "random"):
    ax.plot(step_grid, [sweep[remasking, s][0] for s in step_grid], marker="o", label=remasking)
ax.axhline(reference, color="gray", ls="--", label="true continuation")
ax.set(xscale="log", xlabel="denoising steps", ylabel="AR NLL (nats/token)")
ax.legend()

# %% [markdown]
# At `smoke` more steps help both rules: the most steps beat the fewest. At `laptop` the claim
# is not asserted, and the sweep shows why: 80 steps of continued pretraining leave SmolLM2's
# MDLM writing words, but repetitive ones ("I will speak to you." twice), and the AR judge
# gives repetition a *lower* NLL than the true continuation, so NLL cannot rank the settings
# there: read it beside the distinct ratio. A2D needs far more pretraining than a laptop
# chapter affords before free text reads *well*; chapter 7's short SFT is where the real model
# answers correctly.

# %%
print("distinct ratio per setting:", {k: round(v[1], 3) for k, v in sweep.items()})
if cfg.name == "smoke":
    for remasking in ("low_confidence", "random"):
        assert sweep[remasking, step_grid[0]][0] < sweep[remasking, step_grid[-1]][0]

# %% [markdown]
# The two rules commit tokens in a different order. `low_confidence` picks the easy tokens
# first wherever they are (here, often punctuation and line breaks, which a weak model is surest
# of); `random` spreads commits uniformly. Compare them on one slider:

# %%
random_out = sampler.sample(prompts, base, remasking="random")
viz.DenoisingViewer.side_by_side(
    {"low_confidence": (out, tokenizer), "random": (random_out, tokenizer)}, prompt_len=prompt_len
)

# %% [markdown]
# ## Semi-autoregressive blocks
#
# With `block_size < max_new_tokens` the canvas is cut into blocks, denoised left to right:
# each block gets `steps / num_blocks` steps and sees the finished blocks before it (LLaDA's
# semi-autoregressive sampling). Check it on the history: no token of block $b+1$ is committed
# before block $b$ is complete. The blocks here are `cfg.sft.block_size` long, the size the SFT
# models of chapters 7-10 are sampled in (shorter than `max_new_tokens` at every scale).

# %%
semi_ar_block = cfg.sft.block_size
blocks = sampler.sample(prompts, base, block_size=semi_ar_block)
canvases = torch.stack(blocks.history)[:, :, blocks.gen_start :]  # (S, B, N)
filled = (canvases != MASK).view(len(canvases), len(prompts), -1, semi_ar_block).all(-1)
started = (canvases != MASK).view(len(canvases), len(prompts), -1, semi_ar_block).any(-1)
assert not (started[:, :, 1:] & ~filled[:, :, :-1]).any()  # (S, B, blocks - 1)
n_blocks = cfg.sampling.max_new_tokens // semi_ar_block
print(f"{n_blocks} blocks; AR NLL {judge(blocks)[0]:.3f}")

# %% [markdown]
# Block size matters most for a weak model. In one block, `low_confidence` commits the tokens
# it is surest of first, wherever they are: for a briefly adapted model those are line breaks
# and colons, and the words never come. Small blocks force it to finish the text next to the
# prompt first, where the AR model's knowledge helps most. Words per sample, and the share
# that are real words, for a few block sizes:

# %%
for size in sorted({cfg.sampling.max_new_tokens, semi_ar_block, cfg.sampling.block_size or 8}):
    o = sampler.sample(prompts, base, block_size=size, return_history=False)
    t = tokenizer.batch_decode(o.sequences[:, o.gen_start :], skip_special_tokens=True)
    rate, n_words = quality.known_word_rate(t, vocabulary)
    print(f"block_size={size:3d}: {n_words:4.1f} words per sample, {rate:.0%} known; {t[0]!r}")

# %%
viz.plot_trajectory(blocks.history, tokenizer, row=0)

# %% [markdown]
# ## Temperature: Gumbel-max sampling
#
# At temperature 0 the sampler takes the argmax (deterministic). At $T > 0$ it draws
# $\arg\max_v (\ell_v / T + g_v)$ with Gumbel noise $g_v = -\log(-\log u_v)$, which is an exact
# sample from $\mathrm{softmax}(\ell / T)$. Check with logits $(2, 1, 0)$ at $T = 1$: the
# frequencies must match $\mathrm{softmax} \approx (0.665, 0.245, 0.090)$ within $4\sigma$.

# %%
logits = torch.tensor([2.0, 1.0, 0.0]).expand(1, 20_000, 3)  # (1, N, V)
freq = torch.bincount(denoise.sample_tokens(logits, 1.0)[0], minlength=3) / 20_000
probs = torch.softmax(torch.tensor([2.0, 1.0, 0.0]), 0)
print("frequencies", freq.tolist(), "softmax", probs.tolist())
assert ((freq - probs).abs() < 4 * (probs * (1 - probs) / 20_000).sqrt()).all()
assert denoise.sample_tokens(logits, 0.0).eq(0).all()  # T = 0: always the argmax

# %% [markdown]
# On the model: greedy decoding repeats itself; sampling at $T = 1$ is more diverse.

# %%
by_temp = {}
for temperature in (0.0, 1.0):
    torch.manual_seed(0)
    by_temp[temperature] = judge(sampler.sample(prompts, base, temperature=temperature))
    print(f"T={temperature}: AR NLL {by_temp[temperature][0]:.3f}, "
          f"distinct {by_temp[temperature][1]:.3f}")  # fmt: skip
assert by_temp[1.0][1] > by_temp[0.0][1]

# %% [markdown]
# ## Threshold decoding (Fast-dLLM)
#
# Instead of a fixed count per step, commit **every** masked token whose confidence exceeds a
# threshold, and at least the single most confident one (Fast-dLLM). A confident model then
# finishes in far fewer forward passes. By hand: with threshold 1 nothing ever exceeds it, so
# exactly one token is committed per pass and `nfe == max_new_tokens`.

# %%
nfe = {}
for threshold in (1.0, 0.9, 0.5, 0.2, 0.1, 0.05):
    fast = sampler.sample(prompts, base, threshold=threshold)
    nfe[threshold] = fast.nfe
    print(f"threshold={threshold:<5} forward passes {fast.nfe:3d}  AR NLL {judge(fast)[0]:.3f}")
assert nfe[1.0] == cfg.sampling.max_new_tokens
assert min(nfe.values()) < nfe[1.0]

# %% [markdown]
# Fast-dLLM's default 0.9 saves passes only when the model is often that sure; a model
# trained for a few dozen steps rarely is, so at `smoke` only low thresholds pay off. Rerun at
# `warmup` to see how a better-trained model changes the picture.
#
# ## Caching the prefix and the suffix (Fast-dLLM)
#
# Every step above runs the whole canvas, though the sampler needs logits only for the block
# it denoises: the LM head already runs on that block alone (`head_logits`). With blocks
# (`block_size < max_new_tokens`) Fast-dLLM also skips most of the canvas: at a block's first
# step the whole canvas runs and its keys/values are kept; the block's other steps run only the
# block (and the masked suffix, `kv_cache="prefix"`) or the block alone (`"dual"`, which keeps
# the suffix's keys/values too). Cached columns miss what the block commits meanwhile, so this
# is an approximation; the first step of each block is exact. The chat CLI takes the same
# options: `python -m a2dkit.cli.chat --algo mdlm --kv_cache dual --threshold 0.9 ...`.

# %%
import time

blocks = dict(block_size=cfg.sampling.max_new_tokens // 4)  # 4 blocks, semi-autoregressive
exact = sampler.sample(prompts, base, return_history=False, **blocks)
for kv_cache, threshold in (("none", None), ("prefix", None), ("dual", None), ("dual", 0.05)):
    start = time.process_time()
    fast = sampler.sample(prompts, base, kv_cache=kv_cache, threshold=threshold, **blocks)
    seconds = time.process_time() - start
    agree = (fast.sequences == exact.sequences).float().mean().item()
    print(f"{kv_cache:6s} threshold={threshold}: {fast.nfe:3d} passes, {seconds:5.2f}s CPU, "
          f"agreement with exact {agree:.3f}")  # fmt: skip

# %% [markdown]
# Check by hand: with one step per block every step is a block's first step, so both caches
# must give exactly the tokens of the exact sampler.

# %%
one = dict(blocks, steps=4)  # one step per block
for kv_cache in ("prefix", "dual"):
    cached = sampler.sample(prompts, base, kv_cache=kv_cache, **one)
    assert torch.equal(cached.sequences, sampler.sample(prompts, base, **one).sequences)

# %% [markdown]
# `bench/bench_decoding.py` measures all of these (and the AR model's own `generate`) on the
# held-out split of chapter 7; the results chapter has the table.
#
# ## Summary
#
# - Each reverse step predicts all masks, then commits a schedule-given number of them,
#   chosen by confidence (`low_confidence`) or at random; committed tokens never change.
# - More steps = fewer tokens decoded in parallel = better samples, as judged by the AR model.
# - Blocks (`block_size < max_new_tokens`) make decoding semi-autoregressive; temperature
#   uses exact Gumbel-max sampling; a confidence threshold trades passes for quality.
# - With blocks, Fast-dLLM's prefix / dual KV caches run only the block (and the suffix) after
#   each block's first step: an approximation, measured against the exact sampler.
# - `viz.DenoisingViewer` and `viz.plot_trajectory` show every step of `history`.
#
# ## Exercises
#
# 1. Sweep `block_size` over the divisors of `max_new_tokens` at a fixed number of steps.
#    Does the AR NLL move monotonically?
# 2. Pass `suppress_tokens=[tokenizer.encode("\n")[0]]`. How do the samples and the distinct
#    ratio change?
# 3. Use `MDLMSampler(model, tokenizer, schedule=schedules.make_schedule("cosine"))`. Which
#    steps commit the most tokens, and does quality change at few steps?
# 4. Sample with `stochastic_transfer=True` and compare per-step counts across rows.
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM),
#   arXiv 2406.07524.
# - Nie et al., *Large Language Diffusion Models* (LLaDA), arXiv 2502.09992 (low-confidence
#   remasking, semi-autoregressive blocks).
# - Wu et al., *Fast-dLLM: Training-free Acceleration of Diffusion LLM*, arXiv 2505.22618.
# - Arriola et al., *Block Diffusion* (BD3LM), arXiv 2503.09573.
