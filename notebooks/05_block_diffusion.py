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
# # 5. Block Diffusion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/05_block_diffusion.ipynb)
#
# MDLM (chapters 3 and 4) denoises the whole sequence at once. **Block diffusion** (BD3LM)
# sits between AR and MDLM: it is autoregressive over *blocks* of tokens and a masked diffusion
# model *inside* each block. That lets it reuse a KV cache like an AR model (chapter 6) and
# generate sequences of any length, while still filling many tokens per forward pass. Training
# it is one forward pass over the noisy and the clean sequence side by side, $[x_t; x_0]$,
# under the **staircase mask**; the loss is MDLM's, unchanged.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - the BD3LM factorization over blocks and its training objective;
# - the staircase mask as the union of the paper's three sub-masks $M_{BD}$, $M_{OBC}$,
#   $M_{BC}$, and how to count its entries by hand;
# - how a training input $[x_t; x_0]$, its position ids and its mask are built, and three
#   invariants that prove the construction right;
# - BD3LM continual pretraining on tiny-shakespeare through the real CLI, and its loss curve.
#
# ## What you'll need
#
# - chapters 2 (conversion, the three masks) and 3 (the MDLM loss);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (about a minute, most of it training); at
#   `laptop` minutes on 2 cores (the BD3LM run on the real model, cached afterwards).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import copy

import matplotlib.pyplot as plt
import torch

from a2dkit import convert, tutorial, viz
from a2dkit import eval as a2d_eval
from a2dkit.data import shakespeare
from a2dkit.diffusion import attention, blocks, masking, schedules
from a2dkit.models.conventions import trained_shift
from a2dkit.training.trainers import BD3LMTrainer

torch.manual_seed(0)
source, tokenizer, _ = tutorial.load_source_model(cfg)  # cached since chapter 1
a2d, a2d_tokenizer, _ = convert.to_diffusion(source, copy.deepcopy(tokenizer))  # chapter 2
tol = {"float32": 1e-4, "bfloat16": 5e-2}[cfg.hardware.dtype]  # for logits computed two ways
print(f"scale={cfg.name}: L = cfg.pretrain.max_length = {cfg.pretrain.max_length}, "
      f"pretraining blocks of cfg.pretrain.block_size = {cfg.pretrain.block_size} "
      f"(SFT, chapter 7: cfg.sft.block_size = {cfg.sft.block_size})")  # fmt: skip

# %% [markdown]
# ## Blocks: AR outside, diffusion inside
#
# Cut a sequence of length $L$ into $B = L / L'$ blocks $x^1, \dots, x^B$ of `block_size` $L'$.
# BD3LM factorizes the likelihood autoregressively over blocks (BD3LM §3),
#
# $$\log p_\theta(x) = \sum_{b=1}^{B} \log p_\theta(x^b \mid x^{<b}),$$
#
# and models each block term with masked diffusion conditioned on the *clean* earlier
# blocks. Its training loss is the MDLM NELBO of every block at once (BD3LM §3):
#
# $$\mathcal{L}_{BD}(x; \theta) = \sum_{b=1}^{B} \mathbb{E}_{t \sim U[0,1]}\,
#   \mathbb{E}_{q}\, w(t) \sum_{i:\, x_t^{b,i} = \text{[MASK]}}
#   -\log p_\theta\big(x^{b,i} \mid x_t^b, x^{<b}\big), \qquad
#   w(t) = \frac{-\alpha'(t)}{1 - \alpha(t)}.$$
#
# With $L' = 1$ every block is one token and this is the AR loss; with $L' = L$ there is one
# block and it is MDLM.

# %% [markdown]
# ## The staircase mask
#
# Naively, block $b$'s term needs its own forward pass over $[x^{<b}; x_t^b]$. BD3LM trains all
# blocks in **one** pass over the $2L$ tokens $[x_t; x_0]$ with a mask made of three $L \times L$
# pieces (BD3LM §3.2, Fig. 2):
#
# $$M = \begin{pmatrix} M_{BD} & M_{OBC} \\ 0 & M_{BC} \end{pmatrix}$$
#
# - $M_{BD}$ (block-diagonal): noisy block $b$ sees its own noisy block;
# - $M_{OBC}$ (offset block-causal): noisy block $b$ sees the clean blocks $< b$;
# - $M_{BC}$ (block-causal): clean block $b$ sees the clean blocks $\le b$. The clean half
#   never looks at the noisy half, so $x_0$'s keys and values are those of the clean context.
#
# Here is the mask for $L = 4$ and block size 2, row by row (query rows, key columns; the
# first 4 columns are $x_t$, the last 4 are $x_0$).

# %%
small = attention.staircase_mask(4, 2)  # (2L, 2L) bool, True = may attend
rows = ["".join(str(int(v)) for v in row) for row in small]
print("\n".join(rows))

# %%
assert rows == ["11000000", "11000000", "00111100", "00111100",
                "00001100", "00001100", "00001111", "00001111"]  # fmt: skip
assert small.sum() == 4 * (4 + 2)  # L (L + block size) allowed pairs

# %% [markdown]
# The count by hand: $M_{BD}$ has $L'$ entries per row ($L L'$), $M_{BC}$ has
# $L(L + L')/2$ and $M_{OBC}$ is $M_{BC}$ without its diagonal blocks, $L(L - L')/2$. They add
# up to $L(L + L')$.
#
# The three sub-masks are simple to get from the block-causal mask of chapter 2: $M_{BC}$ *is*
# it, $M_{BD}$ is where it agrees with its transpose (same block) and $M_{OBC}$ is the rest.

# %%
L, bs = 8, 2
m_bc = viz.build_mask("block_causal", L, block_size=bs)  # (L, L): key block <= query block
m_bd = m_bc & m_bc.T  # same block
m_obc = m_bc & ~m_bd  # strictly earlier block
staircase = attention.staircase_mask(L, bs)  # (2L, 2L)

# %%
top, bottom = torch.cat([m_bd, m_obc], 1), torch.cat([torch.zeros_like(m_bc), m_bc], 1)
assert torch.equal(staircase, torch.cat([top, bottom], 0))
assert (m_bd.sum(), m_obc.sum(), m_bc.sum()) == (L * bs, L * (L - bs) // 2, L * (L + bs) // 2)
assert staircase.sum() == L * (L + bs)

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
for ax, (name, m) in zip(axes, {"M_BD": m_bd, "M_OBC": m_obc, "M_BC": m_bc}.items(), strict=False):
    viz.plot_mask(m, ax=ax, title=name)
viz.plot_mask(staircase, ax=axes[3], title=f"staircase L={L}, block {bs}", split=L)
fig.tight_layout()

# %% [markdown]
# In the library the three pieces are one predicate on (query, key) indices, shared by the
# dense mask (`sdpa`, `eager`) and FlexAttention's `mask_mod`, so the two back-ends cannot
# disagree:

# %%
viz.show_source(attention.staircase_predicate)

# %% [markdown]
# With block size 1, $M_{BC}$ is the causal mask: the clean half of the input is exactly an
# AR model's view of the sequence. Use the explorer to watch the staircase grow as the blocks
# shrink (switch to `block_causal` and `bidirectional` to compare).

# %%
assert torch.equal(attention.staircase_mask(6, 1)[6:, 6:], torch.tril(torch.ones(6, 6)).bool())
viz.MaskExplorer(length=8, block_size=2, kind="staircase")

# %% [markdown]
# The mask at this scale's pretraining sizes ($L$ = `cfg.pretrain.max_length`, block =
# `cfg.pretrain.block_size`):

# %%
viz.plot_mask(
    attention.staircase_mask(cfg.pretrain.max_length, cfg.pretrain.block_size),
    title=f"staircase L={cfg.pretrain.max_length}, block {cfg.pretrain.block_size}",
    split=cfg.pretrain.max_length,
)

# %% [markdown]
# ## Building the training input
#
# The forward process is MDLM's: draw $t$, mask each token with probability $1 - \alpha(t)$
# (`masking.sample_t`, `masking.mask_tokens`). Only the *model input* changes:
# `blocks.bd3lm_inputs` concatenates $[x_t; x_0]$, gives both halves the **same** position
# ids $0..L-1$ (token $i$ of $x_t$ and of $x_0$ sit at the same place in the text) and
# returns the staircase mask.

# %%
viz.show_source(blocks.bd3lm_inputs)

# %% [markdown]
# A hand-sized example: 4 tokens of Shakespeare, blocks of 2, the second and third masked.

# %%
x0 = torch.tensor([tokenizer("ROMEO: But, soft!")["input_ids"][:4]])  # (1, L)
masked = torch.tensor([[False, True, True, False]])
xt = torch.where(masked, a2d_tokenizer.mask_token_id, x0)  # (1, L)
input_ids, position_ids, mask = blocks.bd3lm_inputs(xt, x0, block_size=2)
print([a2d_tokenizer.decode([i]) for i in input_ids[0]])
print(position_ids[0].tolist(), tuple(mask.shape))

# %%
assert torch.equal(input_ids, torch.cat([xt, x0], 1))
assert position_ids[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
assert torch.equal(mask[0, 0], small)  # the L = 4, block 2 staircase from above

# %% [markdown]
# `BD3LMTrainer` differs from `MDLMTrainer` *only* in this step. Its `compute_loss` is
# inherited: forward process, forward pass, `losses.mdlm_loss` on the first $L$ positions.
# Padding keys are removed from the mask, FlexAttention gets a `BlockMask` from the same
# predicate, and the LM head runs on the $x_t$ half only (the $x_0$ half is context).

# %%
viz.show_source(BD3LMTrainer._model_inputs)

# %% [markdown]
# ## Three invariants
#
# A mask that is wrong by one block still trains, just worse. These checks catch that; each
# compares two different computations on the converted (not yet trained) model.
#
# **1. One block is MDLM.** With $x_t = x_0$ and block size $L$, $M_{OBC}$ is empty and
# $M_{BD}$ is full: the $x_t$ half sees only itself, bidirectionally. Its logits must equal a
# plain bidirectional forward.

# %%
windows = shakespeare.load_tiny_shakespeare()["test"][shakespeare.TEXT_FIELD][:8]
ids = a2d_tokenizer("\n\n".join(windows), return_tensors="pt")["input_ids"]
x = ids[:, : 4 * cfg.pretrain.max_length].view(4, -1).to(cfg.device)  # (B, L) held-out
with torch.no_grad():
    plain = a2d(x).logits  # (B, L, V), bidirectional
    ids2, pos2, mask2 = blocks.bd3lm_inputs(x, x, block_size=cfg.pretrain.max_length)
    one_block = blocks.bd3lm_logits(a2d(ids2, position_ids=pos2, attention_mask=mask2).logits)
print(f"max |difference| = {(one_block - plain).abs().max():.2e}")

# %%
assert torch.allclose(one_block, plain, atol=tol, rtol=tol)

# %% [markdown]
# **2. Block isolation.** Noisy block $j$ may depend only on itself and on clean blocks
# $< j$. Change every *other* noisy block and every clean block $\ge j$: block $j$'s logits
# must not move.


# %%
def xt_logits(xt, x0, block_size=cfg.pretrain.block_size):
    """x_t-half logits (B, L, V) of the converted model on [x_t ; x_0] (no grad)."""
    ids, pos, mask = blocks.bd3lm_inputs(xt, x0, block_size)
    with torch.no_grad():
        return blocks.bd3lm_logits(a2d(ids, position_ids=pos, attention_mask=mask).logits)


# %%
t = masking.sample_t(len(x), generator=torch.Generator().manual_seed(0))  # (B,)
p_mask = schedules.make_schedule("linear").p_mask(t)  # (B,) = 1 - alpha(t) = t
xt, _ = masking.mask_tokens(x, p_mask, torch.ones_like(x, dtype=torch.bool),
                            a2d_tokenizer.mask_token_id)  # fmt: skip
j, width = 1, cfg.pretrain.block_size
own = slice(j * width, (j + 1) * width)
other = torch.randint_like(x, 1, len(tokenizer))  # (B, L) random tokens
xt2 = other.clone()
xt2[:, own] = xt[:, own]  # noisy block j kept, every other noisy block changed
x02 = x.clone()
x02[:, j * width :] = other[:, j * width :]  # clean blocks >= j changed
before, after = xt_logits(xt, x)[:, own], xt_logits(xt2, x02)[:, own]
print(f"block {j}: max |difference| = {(after - before).abs().max():.2e}")

# %%
assert torch.allclose(before, after, atol=tol, rtol=tol)
x03 = x.clone()
x03[:, : j * width] = other[:, : j * width]  # but a clean block < j *is* seen by block j
assert not torch.allclose(before, xt_logits(xt, x03)[:, own], atol=tol, rtol=tol)

# %% [markdown]
# **3. Block size 1 is the AR model.** With blocks of one token, $M_{BC}$ is the causal mask,
# so the $x_0$ half of the converted model computes exactly what the source AR model computes:
# conversion changed no weight (chapter 2), only the mask.

# %%
ids1, pos1, mask1 = blocks.bd3lm_inputs(xt, x, block_size=1)
with torch.no_grad():
    clean_half = a2d(ids1, position_ids=pos1, attention_mask=mask1).logits[:, x.shape[1] :]
    ar_logits = source(x).logits  # (B, L, V), causal
# a mask token the source lacked (SmolLM2) added a vocabulary row: compare the source's columns
clean_half = clean_half[..., : ar_logits.shape[-1]]
print(f"max |difference| = {(clean_half - ar_logits).abs().max():.2e}")

# %%
assert torch.allclose(clean_half, ar_logits, atol=tol, rtol=tol)

# %% [markdown]
# ## BD3LM continual pretraining on tiny-shakespeare
#
# `tutorial.load_diffusion_model(cfg, "bd3lm")` trains the converted source model with the real
# command line (`python -m a2dkit.cli.bd3lm.pt`, dLLM's flags) once and caches
# `checkpoint-final`; chapter 6 samples from it. At `laptop` it trains in blocks of
# `cfg.pretrain.block_size` = 4 (the smallest block size of the BD3LM paper) with
# `--right_shift_logits True`: each block's first token is then predicted exactly as the AR model
# predicts it (property 3 above, with the shift), and the shorter the blocks, the less of the
# AR model a few dozen steps have to unlearn. Blocks of 16 wrote line breaks and fragments
# after the same 60 steps ([measured](../results.md)); SFT (chapter 7) has its own block size,
# `cfg.sft.block_size`.
# These are the flags of this scale's run:

# %%
print(" ".join(cfg.cli_flags("bd3lm")))

# %%
model, model_tokenizer = tutorial.load_diffusion_model(cfg, "bd3lm")
log = tutorial.training_log(cfg, "bd3lm")
print(f"{len(log)} logged steps; last: {log[-1]}")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([r["step"] for r in log], [r["loss"] for r in log], marker="o")
ax.set(xlabel="step", ylabel="train loss (NELBO / token)", title="BD3LM continual pretraining")

# %% [markdown]
# The training loss is noisy: every step draws new times $t$. A cleaner check is the
# Monte-Carlo ELBO on held-out text (`eval.bd3lm_elbo`, chapter 8): a lower bound on
# $\log p(x)$, in nats, estimated with `cfg.eval.elbo_samples` mask draws per block. Training
# must raise it well beyond its standard error. Both models are scored as the trained checkpoint
# reads its logits (`trained_shift`: with `--right_shift_logits`, token $i$ comes from position
# $i - 1$, and a row's first token is context).


# %%
shift = trained_shift(model)
print("right_shift_logits:", shift)


def elbo_per_token(m):
    gen = torch.Generator().manual_seed(0)  # the same mask draws for both models
    r = a2d_eval.bd3lm_elbo(m, x, block_size=cfg.pretrain.block_size,
                            mc_num=cfg.eval.elbo_samples, prompt_len=int(shift),
                            right_shift_logits=shift, mask_token_id=a2d_tokenizer.mask_token_id,
                            generator=gen)  # fmt: skip
    n = x.numel() - int(shift) * len(x)  # scored tokens
    return r.mean.sum().item() / n, r.stderr.square().sum().sqrt().item() / n


(elbo_0, se_0), (elbo_1, se_1) = elbo_per_token(a2d), elbo_per_token(model)
print(
    f"held-out ELBO / token: converted {elbo_0:.3f} ± {se_0:.3f}, trained {elbo_1:.3f} ± {se_1:.3f}"
)

# %%
assert elbo_1 - elbo_0 > 3 * (se_0**2 + se_1**2) ** 0.5

# %% [markdown]
# ## Summary
#
# - BD3LM is AR over blocks and masked diffusion inside each block; its loss is MDLM's NELBO
#   summed over blocks, and `BD3LMTrainer` reuses MDLM's loss code unchanged.
# - One forward pass over $[x_t; x_0]$ (positions $0..L-1$ twice) under the staircase mask
#   $M_{BD} \cup M_{OBC} \cup M_{BC}$ trains every block at once; the mask has $L(L + L')$
#   entries.
# - Three invariants pin the construction down: one block is MDLM, blocks are isolated from
#   the future, and block size 1 is the source AR model.
#
# ## Exercises
#
# 1. Build `attention.staircase_mask(8, 8)` and `attention.staircase_mask(8, 1)`. Which
#    sub-mask is empty in each, and how many entries does each mask have?
# 2. Break invariant 2 on purpose: replace $M_{OBC}$ with $M_{BC}$ (let noisy block $b$ see
#    clean block $b$ too). Which assert fails, and what would a model learn from such a mask?
# 3. Train with `cfg.replace(pretrain=dict(block_size=cfg.pretrain.max_length))` (one block)
#    and compare the held-out ELBO with chapter 3's MDLM model. Should they agree, and why?
#
# ## References
#
# - Arriola et al., *Block Diffusion: Interpolating Between Autoregressive and Diffusion
#   Language Models* (BD3LM), arXiv 2503.09573 (§3, the block likelihood and loss; §3.2 and
#   Fig. 2, the vectorized training mask).
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM),
#   arXiv 2406.07524.
# - Zhou et al., *dLLM: Simple Diffusion Language Modeling* (the A2D / Tiny-A2D recipes),
#   github.com/ZHZisZZ/dllm.
