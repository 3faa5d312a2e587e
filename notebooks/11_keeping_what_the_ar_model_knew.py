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
# # 11. Keeping what the AR model knew
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/11_keeping_what_the_ar_model_knew.ipynb)
#
# The conversion of chapter 2 is exact, but the training after it is not kind to the source
# model: at small budgets plain MDLM / BD3LM fine-tuning leaves the converted model far below
# its source. The field's answer (2025–2026) is to keep an **AR signal** during the conversion:
# a joint AR + diffusion loss, block sizes that grow from 1 (autoregressive) to the target,
# attention that anneals from causal to bidirectional, distillation from the frozen source,
# masks placed where decoding needs them. This chapter builds each one from the library, trains
# them on the source's *own* answers, and measures, against the source, how much each one kept.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial,humaneval] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - how to build offline chat data from the source model itself (self-distillation);
# - the recipes, each as an equation and the library code that computes it: joint AR loss,
#   block-size curricula (LLaDA2.0's warmup-stable-decay), DiffuLLaMA's attention annealing,
#   AR-teacher distillation, position-dependent and complementary masking, layer-wise rates;
# - the retention benchmark: agreement with the source's answers (chrF), the likelihood gap,
#   HumanEval, forward passes and tokens per second, for every recipe at the same budget;
# - what the converted model answers, next to its source, and how it denoises an answer.
#
# ## What you'll need
#
# - chapters 2 (conversion), 3 and 5 (the MDLM and BD3LM losses), 7 (SFT);
# - `pip install "a2dkit[tutorial,humaneval]"`; a CPU at `smoke` (a few minutes: a small
#   self-chat set and four short runs); at `laptop` the self-chat set of SmolLM2 is built once
#   (about 30 minutes on 2 cores) and the full table comes from `bench/bench_retention.py`.

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import copy
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from a2dkit import convert, tutorial, viz
from a2dkit.data.self_chat import load_self_chat
from a2dkit.diffusion import attention, curriculum, distillation, losses, masking
from a2dkit.diffusion.schedules import make_schedule
from a2dkit.eval import compare
from a2dkit.samplers import BD3LMSampler
from a2dkit.training import optim, recipes
from a2dkit.tutorial import retention

torch.manual_seed(0)
r = cfg.retention
print(f"scale={cfg.name}: {r.steps} steps x batch {r.batch_size} x length {r.max_length}")

# %% [markdown]
# ## Chat data from the source itself
#
# Offline there is no chat dataset to fine-tune on, and any dataset would teach the model
# someone else's answers. The kit asks the source model instead: `a2dkit.data.prompt_sets`
# builds a few thousand everyday prompts from templates over word lists (facts, how-to,
# definitions, short creative tasks, comparisons, advice, simple arithmetic), and
# `a2dkit.data.self_chat` stores the source's own **greedy** answers, built once into the cache.
# The held-out prompts use words no training prompt uses. A model fine-tuned on this set has one
# goal: answer as its source would, which is exactly what we want to measure.

# %%
path = retention.self_chat_data(cfg)  # built once (laptop: ~30 min), then read from the cache
chat = load_self_chat(path)
print(chat)
for row in chat["test"].select(range(3)):
    print(f"- {row['prompt']!r}\n  -> {row['answer'][:100]!r}")

# %%
train_prompts = set(chat["train"]["prompt"])
assert not train_prompts & set(chat["test"]["prompt"])  # held out
assert len(chat["train"]) == r.self_chat_train and len(chat["test"]) == r.self_chat_test

# %% [markdown]
# ## The recipes
#
# Each recipe is a flag of `a2dkit.cli.{mdlm,bd3lm}.{pt,sft}`, stored in the checkpoint's
# config (`a2d_recipe`), exact under resume, and off by default: with every flag off a step is
# the plain loss of chapters 3 and 5, bit for bit.
#
# ### 1. Joint AR + diffusion loss (`--ar_loss_weight α`)
#
# The same weights run twice on the batch: once as a diffusion model on $x_t$, once causally on
# $x_0$ (a causal mask is all it takes: the converted model *is* its source under one). The
# causal next-token loss is added, normalised like the NELBO:
#
# $$\mathcal{L} = \mathcal{L}_{\text{NELBO}} + \alpha\,\frac{1}{N}\sum_i -\log p_\theta(x^i
#   \mid x^{<i}) \quad\text{(Nemotron-Labs-Diffusion; I-DLM).}$$
#
# The checkpoint then also runs as an AR model (`models.causal_mode`), which chapter 6's
# speculative decoding uses as its own verifier.

# %%
viz.show_source(losses.next_token_nll)

# %% [markdown]
# ### 2. Block-size curriculum (`--block_size_schedule`)
#
# BD3LM with blocks of one token *is* autoregressive (BD3LM §3). A curriculum starts there and
# grows the block to its target (`grow`: NBDiff, Uno); LLaDA2.0's warmup-stable-decay (`wsd`)
# grows it to the whole row (MDLM), holds it, then decays to the target.
#
# MDLM has no blocks in training, but it samples in them (semi-autoregressive, LLaDA): the
# blocks before the current one are decoded, the current one is being denoised, the later ones
# are still all masks. `--semi_ar_block_size B` trains exactly that canvas: per row one answer
# block noised at t, the earlier clean, the later masked, and only that block scored (times the
# row's number of blocks: an unbiased estimate of the sum of every block's NELBO).
# `--semi_ar_block_schedule` takes the same curricula; the table's `semi-ar` row grows B from 1
# to the decoding block.

# %%
x0 = torch.arange(10, 22)[None]
block, blocks = masking.semi_ar_blocks(torch.ones_like(x0, dtype=torch.bool), 4)
p_semi = masking.semi_ar_p_mask(torch.tensor([0.5]), block, torch.tensor([1]))
print(p_semi.tolist()[0])  # block 0 clean, block 1 at t = 0.5, block 2 all masks

# %%
steps = 200
fig, ax = plt.subplots(figsize=(7, 2.5))
for spec in curriculum.PRESETS:
    schedule = curriculum.parse_block_schedule(spec, block_size=8, max_length=64, total_steps=steps)
    ax.step(range(steps), [schedule.at(s) for s in range(steps)], where="post", label=spec)
ax.set(yscale="log", xlabel="optimizer step", ylabel="block size", title="block-size curricula")
ax.legend()
fig  # noqa: B018 (displays the figure)

# %% [markdown]
# ### 3. Attention-mask annealing (`--attention_anneal_steps N`)
#
# DiffuLLaMA moves from causal to bidirectional attention gradually: at step $s$ every query
# sees its past and each future key with probability $\min(s/N, 1)$.

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, s in zip(axes, (0, 50, 100), strict=True):
    ratio = attention.anneal_ratio(s, 100)
    ax.imshow(attention.annealed_causal(16, ratio), cmap="Greys_r")
    ax.set(title=f"step {s}: ratio {ratio:.1f}", xticks=[], yticks=[])
fig  # noqa: B018 (displays the figure)

# %% [markdown]
# ### 4. Distillation from the AR source (`--distill_weight β`)
#
# The frozen source predicts token $i$ from the clean prefix $x_0^{<i}$. Where the model's
# conditioning contains that prefix, at the first masked token of each row (MDLM) or of each
# block after the clean blocks (BD3LM), the model is pulled towards the source's distribution:
#
# $$\mathcal{L} \mathrel{+}= \beta\,\frac{1}{N}\sum_{i \in \mathcal{C}}
#   \mathrm{KL}\big(p_{\text{source}}(\cdot \mid x_0^{<i}) \,\|\, p_\theta(\cdot \mid x_t)\big).$$

# %%
masked = torch.tensor([[0, 1, 1, 0, 1, 0, 0, 1]], dtype=torch.bool)
print("masked:        ", masked.int().tolist()[0])
print("MDLM  (row):   ", distillation.clean_prefix_positions(masked).int().tolist()[0])
print("BD3LM (blocks):", distillation.clean_prefix_positions(masked, 4).int().tolist()[0])
viz.show_source(distillation.teacher_kl)

# %% [markdown]
# ### 5. Where and how the masks fall
#
# **Position-dependent masking** (Efficient-DLM, `--position_mask_strength λ`) gives token $i$
# its own schedule $\alpha_i = \alpha^{k_i}$, $k_i = e^{\lambda(2r_i - 1)}$ with $r_i$ its relative
# position: later tokens are masked more, as they are when decoding runs left to right. Its
# NELBO weight is $w_i = -\alpha_i'/(1 - \alpha_i)$. **Complementary masking** (LLaDA2.0,
# Fast-dLLM v2, `--complementary_masking True`) trains every row twice, under its mask and under
# the complement, so every token is scored in each step.

# %%
maskable = torch.ones(1, 32, dtype=torch.bool)
k = masking.position_exponents(maskable, 1.0)
fig, ax = plt.subplots(figsize=(7, 2.5))
for t in (0.25, 0.5, 0.75):
    p = masking.positional_p_mask(make_schedule("linear"), torch.tensor([t]), k)
    ax.plot(p[0], label=f"t = {t}")
ax.set(xlabel="position", ylabel="P(masked)", title="position-dependent masking, λ = 1")
ax.legend()
fig  # noqa: B018 (displays the figure)

# %%
x0 = torch.arange(10, 26)[None]
xt, m = masking.mask_tokens(x0, torch.tensor([0.4]), maskable[:, :16], mask_token_id=0)
xt_c, m_c = masking.complement_mask(x0, m, maskable[:, :16], mask_token_id=0)
assert not (m & m_c).any() and (m | m_c).all()  # every token scored in exactly one view
print(xt.tolist()[0], "\n", xt_c.tolist()[0])

# %% [markdown]
# ### 6. Layer-wise learning rates (`--lr_multipliers`)
#
# RND1 trains the parts the conversion must change faster than those that store what the AR
# model knew: `--lr_multipliers "mlp=0.3"` gives every MLP weight 0.3 x the learning rate (one
# optimizer group per rate, saved with the optimizer, so resume is exact).
#
# ### 7. Full-mask rows, for a drafter (`--full_mask_prob`)
#
# TiDAR trains its diffusion half with every token of the block masked: exactly what a
# one-step draft reads (a block of masks after a clean prefix), which chapter 6's one-pass
# speculative decoder asks of the model. `--full_mask_prob P` sets t = 1 for a share P of the
# rows, weight 1; the table's `tidar` row is P = 1 with the joint AR loss, TiDAR's recipe.

# %%
viz.show_source(optim.lr_param_groups)
viz.show_source(recipes.RecipeMixin._complement)

# %% [markdown]
# ## Training at one budget
#
# `tutorial.retention.train_recipe` fine-tunes the source on the self-chat set with the kit's
# CLI, `cfg.retention.steps` steps of `cfg.retention.batch_size` rows of at most
# `cfg.retention.max_length` tokens, for every row alike; logits are read right-shifted (the
# converted head is its source's next-token head). This chapter trains
# `cfg.retention.chapter_recipes` for `cfg.retention.chapter_algos`, each recipe for the
# algorithms it is for: every recipe for both algorithms at `smoke` (seconds each on the tiny
# model); at `laptop`, for the book's 90-minute budget on 2 cores, BD3LM alone with layer-wise
# learning rates, the row of the laptop table whose answers agree most with the source, at
# plain's cost (`best` trains three times as long, the MDLM pair would add about 37 minutes).
# The bench trains the rest (`bench/bench_retention.py`) and the full table below has them all.
# `best` is what the single rows of the laptop table chose (`book/results.md`): the joint AR
# loss, complementary masking and layer-wise rates. Distillation and the growing block, alone,
# did not help there at 60 steps.

# %%
trained = retention.table_rows(r.chapter_algos, r.chapter_recipes)  # each recipe for its algorithms
for algo, name in trained:
    print(f"{algo} {name:>13}: {' '.join(retention.recipe_flags(cfg, algo, name))}")
models = {(algo, name): retention.train_recipe(cfg, algo, name) for algo, name in trained}

# %% [markdown]
# ## How much was kept
#
# The source answers the held-out prompts greedily; each model answers the same prompts
# greedily (one token per denoising step). chrF (character n-gram F-score) and exact match
# compare the answers; the likelihood gap compares the model's ELBO bound with the source's
# exact NLL on the source's held-out answers (nats per token; negative means the model finds the
# source's greedy answers likelier than the source does); forward passes and tokens per second
# say what an answer costs.

# %%
source, tokenizer, _ = tutorial.load_source_model(cfg)
held_out = chat["test"].select(range(r.num_prompts))
prompts = held_out["prompt"]
inputs = compare.chat_inputs(tokenizer, prompts)
decoding = dict(max_new_tokens=r.max_new_tokens, block_size=r.block_size)
reference = compare.decode(source, tokenizer, inputs, algo="ar", **decoding)
rows, answers = [compare.retention_row("source", "ar", "source", reference, reference.texts)], {}
for (algo, name), (model, tok) in models.items():
    out = compare.decode(model, tok, compare.chat_inputs(tok, prompts), algo=algo, **decoding)
    nll = compare.answer_nll_gap(source, model, tok, prompts, reference.texts, algo=algo,
                                 block_size=r.block_size, mc_num=r.elbo_samples)  # fmt: skip
    seconds = retention.train_seconds(cfg, algo, name)
    rows.append(compare.retention_row(f"{algo} {name}", algo, name, out, reference.texts,
                                      nll=nll, train_seconds=seconds))  # fmt: skip
    answers[(algo, name)] = out.texts
print(f"{'row':<12} {'chrF':>6} {'exact':>6} {'NLL gap':>8} {'fwd/tok':>8} {'tok/s':>7}")
for row in rows:
    gap = "-" if row.nll_gap is None else f"{row.nll_gap:.3f}"
    print(f"{row.name:<12} {row.chrf:>6.3f} {row.exact_match:>6.3f} {gap:>8} "
          f"{row.forwards_per_token:>8.2f} {row.tok_per_s:>7.1f}")  # fmt: skip

# %%
assert rows[0].chrf == 1.0 and rows[0].exact_match == 1.0  # the source against itself
assert all(0.0 <= row.chrf <= 1.0 and row.nll_gap is not None for row in rows[1:])
assert len(rows) == 1 + len(trained)

# %% [markdown]
# The check that makes the gap trustworthy: a *fresh* conversion, read right-shifted in BD3LM
# blocks of one token, is its source (BD3LM §3), so its gap is zero to float64 rounding.

# %%
fresh = convert.to_diffusion(copy.deepcopy(source).double(), copy.deepcopy(tokenizer))[0]
fresh.config.right_shift_logits = True
kept = compare.answer_nll_gap(source.double(), fresh, tokenizer, prompts[:2], reference.texts[:2],
                              algo="bd3lm", block_size=1, mc_num=1)  # fmt: skip
print(f"fresh conversion, blocks of 1: gap {kept[1] - kept[0]:.2e} nats/token")
assert abs(kept[1] - kept[0]) < 1e-6
source = source.float()

# %% [markdown]
# ## The full table
#
# `bench/bench_retention.py` measures every recipe of `cfg.retention.recipes` the same way, plus
# held-out plain text and HumanEval (pass@1, completions run in the sandbox). Its last run at
# this scale, when the book was built, is kept in `book/retention_<scale>.json`:

# %%
REPO = Path(a2dkit.tutorial.__file__).resolve().parents[2]  # book/ lives next to the package
table = REPO / "book" / f"retention_{cfg.name}.json"
if table.is_file():
    bench = json.loads(table.read_text())
    print(f"bench_retention at {bench['scale']} on {bench['machine']}")
    for row in bench["rows"]:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
               if k in ("name", "chrf", "exact_match", "nll_gap", "nll_gap_text",
                        "humaneval_pass1", "forwards_per_token", "train_seconds")})  # fmt: skip
else:
    print(f"no bench table for {cfg.name}: run A2DKIT_SCALE={cfg.name} python "
          f"bench/bench_retention.py --json book/retention_{cfg.name}.json")

# %% [markdown]
# ## Side by side
#
# The same held-out prompts, answered by the source and by the chapter's last BD3LM model.

# %%
shown = [key for key in trained if key[0] == "bd3lm"][-1]  # best at smoke, layer-lr at laptop
for prompt, ref, ans in list(zip(prompts, reference.texts, answers[shown], strict=True))[:4]:
    print(f"Q: {prompt}\n  source: {ref[:160]!r}\n  {shown[1]:>6}: {ans[:160]!r}\n")

# %% [markdown]
# And how it wrote one of them: the denoising viewer replays the BD3LM sampler, block by block.

# %%
model, tok = models[shown]
out = BD3LMSampler(model, tok).sample(
    compare.chat_inputs(tok, prompts[:1]), max_new_tokens=r.max_new_tokens,
    block_size=r.block_size, steps=r.max_new_tokens, temperature=0.0, return_history=True,
)  # fmt: skip
viewer = viz.DenoisingViewer(out, tok, title=f"BD3LM {shown[1]}: a held-out prompt")
viewer  # noqa: B018 (displays the widget)

# %%
assert viewer.render(0) != viewer.render(viewer.num_steps - 1)

# %% [markdown]
# ## Summary
#
# - A converted model starts as its source under a causal mask; every recipe here keeps an AR
#   signal while the model learns to denoise: the joint loss, a growing block, annealed
#   attention, distillation from the source, masks placed where decoding needs them.
# - Each is one flag of the training CLIs, stored in the checkpoint, exact under resume, and
#   off by default (then training is bit for bit the plain recipe).
# - The retention benchmark compares a converted model with its source on the same held-out
#   prompts and text: chrF and exact match of the answers, the likelihood gap, HumanEval.
#
# ## Exercises
#
# 1. Train `complementary` with `retention.train_recipe(cfg, "bd3lm", "complementary")`: at the
#    same number of steps it sees every token twice. Is it better per step? Per second?
# 2. Change `best` to add `--distill_weight 1.0` (edit `retention.RECIPES`) and rerun the
#    table with `bench/bench_retention.py --recipes plain,best`. Does the teacher help once the
#    other recipes are on?
# 3. Why can the likelihood gap on the source's *own answers* be negative, while the gap on
#    held-out text is not?
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models*, arXiv 2406.07524.
# - Arriola et al., *Block Diffusion*, arXiv 2503.09573.
# - Gong et al., *Scaling Diffusion Language Models via Adaptation from Autoregressive Models*
#   (DiffuLLaMA), arXiv 2410.17891.
# - LLaDA2.0 (warmup-stable-decay block sizes, complementary masking), arXiv 2512.15745.
# - Efficient-DLM (position-dependent masking), arXiv 2512.14067.
# - Fast-dLLM v2, arXiv 2509.26328; I-DLM, arXiv 2604.11035; OPDLM, arXiv 2606.06712.
# - Popović, *chrF: character n-gram F-score for automatic MT evaluation*, WMT 2015.
# - Chen et al., *Evaluating Large Language Models Trained on Code* (HumanEval), arXiv 2107.03374.
