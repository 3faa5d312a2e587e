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
# # 8. Evaluation with lm-eval
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/08_evaluation_with_lm_eval.ipynb)
#
# Benchmarks ask a language model two kinds of question: *generate* an answer (GSM8K, HumanEval)
# or *score* given answers (MMLU, HellaSwag pick the most likely choice). An AR model scores a
# text exactly with the chain rule; a diffusion model cannot, but it can bound the score from
# below. This chapter builds that bound, plugs both diffusion samplers and the bound into
# [lm-eval](https://github.com/EleutherAI/lm-evaluation-harness), and runs a benchmark end to end.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - the Monte-Carlo ELBO that replaces log-likelihood for MDLM and BD3LM, its standard error,
#   and how it converges as the number of draws `mc_num` grows;
# - the two lm-eval models a2dkit registers, `a2d_mdlm` and `a2d_bd3lm`, and their `model_args`;
# - a local lm-eval task built from the kit's synthetic instructions, run with `simple_evaluate`;
# - the task list and sampler settings of the published Tiny-A2D tables, and the scripts that
#   reproduce them.
#
# ## What you'll need
#
# - chapter 7 (the SFT'd models; at `smoke` they are trained once and cached, about a minute);
# - `pip install "a2dkit[tutorial]"` (it brings `lm-eval`), a CPU at `smoke`.

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import json
import subprocess
from pathlib import Path

import lm_eval
import matplotlib.pyplot as plt
import torch

import a2dkit
from a2dkit import eval as a2d_eval
from a2dkit import tutorial, viz
from a2dkit.eval import exact_match, harness, tasks

torch.manual_seed(0)
models = {algo: tutorial.load_diffusion_model(cfg, algo, sft=True) for algo in ("mdlm", "bd3lm")}
mdlm, tokenizer = models["mdlm"]

# %% [markdown]
# ## A likelihood bound instead of a likelihood
#
# Score an answer $y$ of $N$ tokens after a prompt $x$. Mask a random subset $S$ of the answer,
# ask the model to fill it in, and weight the log-probabilities of the masked tokens. With
# $l \sim \mathcal{U}\{1..N\}$ masked tokens drawn uniformly (LLaDA's estimator),
#
# $$\log p_\theta(y \mid x) \;\ge\; \mathrm{ELBO} = \mathbb{E}_{l,\,S:|S|=l}\Big[\frac{N}{l}
#   \sum_{i \in S} \log p_\theta(y_i \mid x, y_{\setminus S})\Big],$$
#
# the discrete form of MDLM's continuous-time bound (MDLM §3; with $t \sim \mathcal{U}[\epsilon,1)$,
# each token masked with probability $t$ and weight $w(t) = 1/t$, `estimator="time"`). Each
# draw costs one forward pass; the mean of `mc_num` draws estimates the ELBO, and
# $\mathrm{stderr} = \mathrm{std}/\sqrt{\texttt{mc\_num}}$ says how well. `sample_masks` draws $S$:

# %%
viz.show_source(a2d_eval.sample_masks)

# %% [markdown]
# One held-out row of the synthetic task, in the chat format the models were SFT'd on:

# %%
row = tasks.synthetic_task_rows()[0]
chat = [{"role": "user", "content": row["prompt"]}]
prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
prompt_ids = tokenizer(prompt)["input_ids"]
answer_ids = tokenizer(row["answer"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
ids = torch.tensor(prompt_ids + answer_ids)
print(repr(prompt), "->", repr(row["answer"]), f"({len(answer_ids)} answer tokens)")

# %%
gen = torch.Generator().manual_seed(0)
res = a2d_eval.mdlm_elbo(mdlm, ids, prompt_len=len(prompt_ids), mc_num=cfg.eval.elbo_samples,
                         generator=gen)  # fmt: skip
print(f"ELBO = {res.mean:.3f} ± {res.stderr:.3f} nats from {cfg.eval.elbo_samples} draws")
print("draws:", [round(v, 2) for v in res.samples.tolist()])

# %% [markdown]
# ### Check by hand: one answer token
#
# With $N = 1$ there is one subset, $l = 1$, weight 1: every draw is the same number, the
# log-probability of the answer token when it is masked. One forward pass gives it exactly.

# %%
one = torch.tensor(prompt_ids + answer_ids[:1])
draws = a2d_eval.mdlm_elbo(mdlm, one, prompt_len=len(prompt_ids), mc_num=4).samples
masked = one.clone()
masked[-1] = tokenizer.mask_token_id
with torch.no_grad():
    logp = mdlm(masked[None].to(mdlm.device)).logits[0, -1].double().log_softmax(-1)
print(draws.tolist(), float(logp[answer_ids[0]]))
assert torch.allclose(draws, logp[answer_ids[0]].cpu().expand(4), atol=1e-5)

# %% [markdown]
# ## Converging as `mc_num` grows
#
# The draws are i.i.d., so the standard error falls like $1/\sqrt{\texttt{mc\_num}}$: 16 times
# more draws, 4 times less error. The estimates must agree within their error bars.

# %%
mc_nums = [cfg.eval.elbo_samples * 4**k for k in range(3)]
runs = {}
for m in mc_nums:
    runs[m] = a2d_eval.mdlm_elbo(mdlm, ids, prompt_len=len(prompt_ids), mc_num=m,
                                 generator=torch.Generator().manual_seed(m))  # fmt: skip
    print(f"mc_num={m:4d}: {runs[m].mean:8.3f} ± {runs[m].stderr:.3f}")

# %%
small, big = runs[mc_nums[0]], runs[mc_nums[-1]]
gap, sigma = abs(small.mean - big.mean), (small.stderr**2 + big.stderr**2) ** 0.5
assert gap < 4 * sigma, (gap, sigma)  # consistent estimates of one number
assert big.stderr < small.stderr  # 16x the draws: smaller error (expected ratio 1/4)
print(f"stderr ratio {big.stderr / small.stderr:.2f} (1/sqrt(16) = 0.25)")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
means = [float(runs[m].mean) for m in mc_nums]
ax.errorbar(mc_nums, means, yerr=[2 * float(runs[m].stderr) for m in mc_nums], fmt="o-", capsize=4)
ax.set(xscale="log", xlabel="mc_num (draws)", ylabel="ELBO (nats)", title="mean ± 2 stderr")
plt.show()

# %% [markdown]
# The two estimators estimate the same bound (up to the tiny $\epsilon$ cut of "time"), and
# BD3LM's bound is a sum of per-block MDLM bounds, each block noised after clean earlier blocks:

# %%
m = mc_nums[-1]
timed = a2d_eval.mdlm_elbo(mdlm, ids, prompt_len=len(prompt_ids), mc_num=m, estimator="time",
                           generator=torch.Generator().manual_seed(1))  # fmt: skip
print(f"count: {runs[m].mean:.3f} ± {runs[m].stderr:.3f}", end="   ")
print(f"time: {timed.mean:.3f} ± {timed.stderr:.3f}")
sigma = (timed.stderr**2 + runs[m].stderr ** 2) ** 0.5
assert abs(timed.mean - runs[m].mean) < 4 * sigma
bd3lm, _ = models["bd3lm"]
blocked = a2d_eval.bd3lm_elbo(bd3lm, ids, block_size=cfg.sft.block_size,  # its SFT blocks
                              prompt_len=len(prompt_ids), mc_num=cfg.eval.elbo_samples)  # fmt: skip
print(f"BD3LM (block {cfg.sft.block_size}): {blocked.mean:.3f} ± {blocked.stderr:.3f}")

# %% [markdown]
# ## Two lm-eval models: `a2d_mdlm` and `a2d_bd3lm`
#
# `import a2dkit.eval.harness` registers both with lm-eval (`python -m a2dkit.eval` does it
# for you). Their three methods map onto the library:
#
# | lm-eval method | a2dkit |
# |---|---|
# | `generate_until` | `MDLMSampler` / `BD3LMSampler`, cut at `until` strings and EOS |
# | `loglikelihood` | `mdlm_elbo` / `bd3lm_elbo` of the continuation (one seed for all) |
# | `loglikelihood_rolling` | the ELBO of lm-eval's disjoint windows, summed |
#
# A task's `max_gen_toks` caps `max_new_tokens` (the steps shrink in proportion).
#
# `--model_args` takes the dLLM names; anything else is refused before a model is loaded:

# %%
for f in harness.A2DEvalConfig.__dataclass_fields__.values():
    print(f"{f.name:>20} = {f.default!r}")

# %%
try:
    harness.check_model_args("a2d_bd3lm", "pretrained=x,steps=64,stepz=8")
except ValueError as err:
    print(err)
    assert "stepz" in str(err) and "'steps'" in str(err)

# %% [markdown]
# ## A local task: `a2dkit_synthetic`
#
# lm-eval tasks are YAML files. a2dkit ships two in `a2dkit/eval/tasks/` over the same 100
# held-out synthetic instructions (never in an SFT train split): `a2dkit_synthetic` generates
# the answer and scores exact match; `a2dkit_synthetic_mc` scores four choices by likelihood.

# %%
print((tasks.TASKS_DIR / "a2dkit_synthetic" / "a2dkit_synthetic.yaml").read_text())
print(json.dumps(tasks.synthetic_task_rows()[1]))

# %% [markdown]
# ## Running it with `simple_evaluate`
#
# The same call evaluates both models on `cfg.eval.tasks` plus the multiple-choice variant,
# `cfg.eval.limit` documents each, with the chat template, as the published runs do.
# Indexing lm-eval's ~10k built-in YAML files takes ~30 s, so it happens only if needed.

# %%
local = {p.stem for p in tasks.TASKS_DIR.glob("*/*.yaml")}
task_names = [*cfg.eval.tasks, "a2dkit_synthetic_mc"]
manager = tasks.task_manager(include_defaults=not set(task_names) <= local)
block = {"mdlm": cfg.sft.max_new_tokens, "bd3lm": cfg.sft.block_size}  # MDLM: one (published)

# %%
results = {}
for algo, (model, tok) in models.items():
    args = dict(pretrained=model, tokenizer=tok, max_new_tokens=cfg.sft.max_new_tokens,
                steps=cfg.sft.sampler_steps, block_size=block[algo],
                temperature=cfg.sampling.temperature, mc_num=cfg.eval.elbo_samples,
                device=cfg.device)  # fmt: skip
    results[algo] = lm_eval.simple_evaluate(
        model=f"a2d_{algo}", model_args=args, tasks=task_names, limit=cfg.eval.limit,
        task_manager=manager, apply_chat_template=True, random_seed=0,
    )  # fmt: skip
    print(algo, lm_eval.utils.make_table(results[algo]), sep="\n")

# %% [markdown]
# ### Check by hand
#
# Every number can be recomputed from the logged samples: exact match with the kit's own
# `synthetic.exact_match`, and a choice's score with `mdlm_elbo` (lm-eval moves the context's
# trailing newline into the continuation before tokenizing, so we do the same).

# %%
res = results["mdlm"]
gen = res["samples"]["a2dkit_synthetic"]
preds, refs = [s["filtered_resps"][0] for s in gen], [s["target"] for s in gen]
for s in gen[:4]:
    print(repr(s["doc"]["prompt"]), "->", repr(s["filtered_resps"][0]), "|", repr(s["target"]))
em = res["results"]["a2dkit_synthetic"]["exact_match,strip"]
assert abs(exact_match.exact_match(preds, refs) - em) < 1e-12

# %%
context, choice = res["samples"]["a2dkit_synthetic_mc"][0]["arguments"][0]
ctx = tokenizer(context.rstrip())["input_ids"]
whole = tokenizer(context + choice)["input_ids"]
mine = a2d_eval.mdlm_elbo(mdlm, torch.tensor(whole), prompt_len=len(ctx),
                          mc_num=cfg.eval.elbo_samples,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
logged = float(res["samples"]["a2dkit_synthetic_mc"][0]["resps"][0][0][0])
print(f"by hand {float(mine.mean):.4f}   lm-eval {logged:.4f}")
assert abs(float(mine.mean) - logged) < 1e-4 * max(1.0, abs(logged))

# %%
fig, ax = plt.subplots(figsize=(5, 3))
keys = [("a2dkit_synthetic", "exact_match,strip"), ("a2dkit_synthetic_mc", "acc,none")]
for i, algo in enumerate(results):
    vals = [results[algo]["results"][t][k] for t, k in keys]
    ax.bar([j + 0.4 * i for j in range(2)], vals, width=0.4, label=algo)
ax.axhline(0.25, color="gray", ls="--", label="chance (4 choices)")
ax.set(xticks=[0.2, 1.2], xticklabels=["exact match", "choice accuracy"], ylim=(0, 1))
ax.legend()
plt.show()

# %% [markdown]
# At `smoke` the models are tiny and briefly trained: expect scores near chance. The point is
# the pipeline: the same two models and the same calls evaluate Qwen3-0.6B at `full`.
#
# ## From the command line, on many GPUs
#
# `python -m a2dkit.eval` is lm-eval's own CLI with the two models registered and the local
# tasks on the include path; under `accelerate launch` every rank takes its share of the
# documents (lm-eval's rank / world-size convention) and rank 0 gathers the metrics:
#
# ```bash
# accelerate launch --num_processes 8 -m a2dkit.eval --model a2d_bd3lm --apply_chat_template \
#     --tasks gsm8k_cot --num_fewshot 0 \
#     --model_args "pretrained=DIR,max_new_tokens=256,steps=256,block_size=32,cfg_scale=0.0"
# ```
#
# `slurm/eval_tiny_a2d.sh` runs the whole published list (one node, 8 GPUs; the same script
# runs without Slurm, or via `slurm/eval_tiny_a2d_local.sh`). `DRY_RUN=1` checks every setting
# on the CPU and prints the commands without running them:

# %%
script = Path(a2dkit.__file__).resolve().parents[1] / "slurm" / "eval_tiny_a2d.sh"
env = {**os.environ, "DRY_RUN": "1", "CHECK_TASKS": "0", "ALGO": "bd3lm", "PYTHON": sys.executable,
       "MODEL": str(cfg.output_dir("bd3lm-sft") / "checkpoint-final")}  # fmt: skip
proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
commands = [line for line in proc.stderr.splitlines() if "-m a2dkit.eval" in line]
print("\n\n".join(commands))
assert proc.returncode == 0 and len(commands) == 8, proc.stderr

# %% [markdown]
# ## The published settings and tables
#
# The Tiny-A2D tables (dLLM A2D README) come from these runs, all with `--apply_chat_template`,
# temperature 0, `cfg_scale` 0, 256 new tokens in 256 steps, block 256 (MDLM: one block) or 32
# (BD3LM):
#
# | task | lm-eval type | shots | answered by |
# |---|---|---|---|
# | `gsm8k_cot`, `minerva_math`, `mmlu_pro` | generate | 0 | the sampler |
# | `bbh` | generate | 3 | the sampler |
# | `humaneval_instruct`, `mbpp_instruct` | generate, run the code | 0 | the sampler |
# | `mmlu`, `hellaswag` | multiple choice | 0 | the ELBO (`mc_num` 128) |
#
# dLLM scored MMLU and HellaSwag with generative variants of its own (`mmlu_generative_dream`,
# `hellaswag_gen`, 3 new tokens) that lm-eval does not ship; a2dkit uses lm-eval's
# likelihood tasks through the ELBO instead, so those two columns are not directly comparable.
# The code tasks execute generated code: lm-eval needs `--confirm_run_unsafe_code`.
# The numbers themselves, with their provenance, are on the [results page](../results.md):
# e.g. Qwen3-0.6B-diffusion-bd3lm-v0.1 scores 46.3 on GSM8K and 46.3 on HumanEval.
#
# ## Summary
#
# - A diffusion LM scores text with a Monte-Carlo lower bound: `mdlm_elbo` / `bd3lm_elbo`
#   return its mean and standard error, which falls like $1/\sqrt{\texttt{mc\_num}}$.
# - `a2d_mdlm` / `a2d_bd3lm` make both samplers and the bound available to every lm-eval task;
#   unknown `model_args` are refused before loading.
# - The local `a2dkit_synthetic` tasks run offline with `simple_evaluate`, and every metric can
#   be recomputed by hand from the logged samples.
# - `slurm/eval_tiny_a2d.sh` reproduces the published task list and sampler settings.
#
# ## Exercises
#
# 1. Rerun the convergence cell with `estimator="time"`. Which estimator has the smaller
#    standard error for the same `mc_num`, and why (think of $t$ close to 0)?
# 2. Score the multiple-choice task with `mc_num=1`. How often does the accuracy change between
#    seeds (`seed=` in `model_args`)? What does that say about `mc_num` for MMLU?
# 3. Evaluate the MDLM model with `block_size=cfg.sft.block_size` (semi-autoregressive blocks)
#    instead of one block. Does exact match change?
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM), arXiv 2406.07524.
# - Arriola et al., *Block Diffusion* (BD3LM), arXiv 2503.09573.
# - Nie et al., *Large Language Diffusion Models* (LLaDA; the count estimator), arXiv 2502.09992.
# - Gao et al., *The Language Model Evaluation Harness* (lm-eval), doi 10.5281/zenodo.10256836.
