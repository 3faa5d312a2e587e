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
# # 10. Reinforcement Learning with diffu-GRPO
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/10_reinforcement_learning_with_diffu_grpo.ipynb)
#
# SFT (chapter 7) teaches a model to imitate answers. Reinforcement learning with *verifiable
# rewards* teaches it from a score instead: sample several answers to a prompt, check each with a
# program (is the number right? is the format right? do the tests pass?), and make the better
# ones more likely. GRPO does this without a value network; d1's **diffu-GRPO** adapts it to
# diffusion LMs, whose likelihood has no exact per-token form. This chapter builds it for both
# of our algorithms, MDLM and BD3LM, on TRL's `GRPOTrainer`, and runs it on your CPU.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial,rl] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - the GRPO objective: group-relative advantages, the clipped ratio and the KL to a reference;
# - how diffu-GRPO estimates per-token log-probabilities of a diffusion LM in one forward pass
#   (MDLM), and block by block for BD3LM;
# - verifiable rewards: answer checks, format rewards, and code run in a sandbox;
# - a GRPO run at this book's scale, with its reward curve and samples before and after;
# - the GPU commands with dLLM's settings, and the Slurm recipes.
#
# ## What you'll need
#
# - chapters 3 and 5 (the MDLM and BD3LM losses) and 7 (SFT); `pip install "a2dkit[rl]"`
#   (TRL and peft);
# - a CPU at `smoke` (a few minutes: two short SFT runs, then two GRPO runs of 60 steps).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import matplotlib.pyplot as plt
import torch

from a2dkit import tutorial, viz
from a2dkit.grpo import BD3LMGRPOTrainer, MDLMGRPOTrainer, curves, logprobs, rewards, tasks
from a2dkit.samplers import BD3LMSampler, MDLMSampler

TRAINERS = {"mdlm": MDLMGRPOTrainer, "bd3lm": BD3LMGRPOTrainer}
SAMPLERS = {"mdlm": MDLMSampler, "bd3lm": BD3LMSampler}

# %% [markdown]
# ## The objective
#
# For a prompt $q$ the policy $\pi_\theta$ samples a group of $G$ completions $o_1, \dots, o_G$,
# and a reward function scores each, $r_i$. GRPO (arXiv 2402.03300) needs no critic: the
# advantage of a completion is its reward relative to its group,
# $A_i = r_i - \operatorname{mean}(r_1, \dots, r_G)$ (d1 does not divide by the group's standard
# deviation: `scale_rewards="none"`). Every token $k$ of $o_i$ then gets the PPO-style clipped
# objective, minus a KL penalty to a frozen reference model:
#
# $$
# \mathcal{J}(\theta) = \mathbb{E}\Big[\frac{1}{G}\sum_{i=1}^{G}\frac{1}{|o_i|}\sum_{k=1}^{|o_i|}
#   \min\big(\rho_{i,k} A_i,\ \operatorname{clip}(\rho_{i,k}, 1-\varepsilon, 1+\varepsilon) A_i\big)
#   - \beta\, \mathrm{KL}\big[\pi_\theta \,\|\, \pi_\text{ref}\big]\Big],
# \qquad \rho_{i,k} = \frac{\pi_\theta(o_{i,k} \mid q, o_{i,<k})}{\pi_{\theta_\text{old}}(o_{i,k}
#   \mid q, o_{i,<k})}.
# $$
#
# Everything here is TRL's, inherited unchanged: the group advantages, the clipping, the KL, the
# reference model and its syncing, multi-process training. Two things are not, because a
# diffusion LM neither generates left to right nor has the per-token likelihoods
# $\pi(o_{i,k} \mid q, o_{i,<k})$: **generation** (our samplers) and **the log-probabilities**.

# %% [markdown]
# ## Log-probabilities of a diffusion LM
#
# diffu-GRPO (d1, arXiv 2504.12216, §3.2) estimates them in one step: mask **every** completion
# token, mask each prompt token with probability $p_\text{mask}$ (`--p_mask_prompt`, 0.15), run
# the model once, and read $\log p_\theta(o_k \mid q', \text{mask}^{|o|})$ at every position $k$.
# The random prompt mask $q'$ acts as a regulariser; its seed is drawn once per GRPO iteration,
# so the old, new and reference log-probabilities of one iteration see the same $q'$.
#
# BD3LM factorises the likelihood over blocks, $\log p(x) = \sum_b \log p(x^b \mid x^{<b})$
# (arXiv 2503.09573, Eq. 3), and its sampler starts each block fully masked, conditioned on the
# clean earlier blocks. So our BD3LM estimate masks block $b$ of the completion and conditions it
# on the clean blocks before it, for all blocks in one pass through the staircase
# $[x_t ; x_0]$ input of chapter 5.

# %%
viz.show_source(logprobs.mdlm_completion_logits)

# %% [markdown]
# ## Rewards you can check
#
# A reward is a function of the completions and the dataset's columns; TRL sums all of them.
# d1 pairs an answer check with **format rewards** for its `<reasoning>…</reasoning><answer>…
# </answer>` template. The kit ships the answer checks for gsm8k, MATH (boxed answers),
# countdown, 4×4 sudoku and code (run in a subprocess with a time limit, no network and resource
# limits), and two for its synthetic lookups: `exact_match` and the one-digit format
# `digit_answer`. As in d1, a well-formed countdown equation with the wrong value still earns
# 0.1. A reward that raises scores 0 and logs why; the run goes on.

# %%
print(sorted(rewards.REWARDS))
chat = [[{"role": "assistant", "content": "<reasoning>\n8 * 3 = 24\n</reasoning>\n"
          "<answer>\n(5 + 3) * 3\n</answer>"}]]  # fmt: skip
for name in ("countdown", "strict_format", "soft_format", "xml_count"):
    print(f"{name:14s}", rewards.REWARDS[name](chat, nums=[[5, 3, 3]], target=[24]))

# %%
assert rewards.REWARDS["countdown"](chat, nums=[[5, 3, 3]], target=[24]) == [1.0]
assert rewards.REWARDS["countdown"](chat, nums=[[5, 3, 3]], target=[25]) == [0.1]  # format only
digits = [[{"role": "assistant", "content": "7"}], [{"role": "assistant", "content": "seven"}]]
assert rewards.REWARDS["digit_answer"](digits) == [1.0, 0.0]

# %% [markdown]
# ## The task and the starting model
#
# At `smoke` the task is the kit's synthetic one-digit lookups (chapter 7's data), as GRPO rows:
# a chat prompt plus the columns the rewards read. The rewards are the scale's:

# %%
print("dataset:", cfg.grpo.dataset, " rewards:", cfg.grpo.rewards)
reward_funcs = rewards.get_rewards(cfg.grpo.rewards)
train = tasks.load_task(cfg.grpo.dataset, "train", 256, seed=0)
test = tasks.load_task(cfg.grpo.dataset, "test", 32, seed=0)
print(train[0]["prompt"], train[0].get("answer"))

# %% [markdown]
# RL needs a model that sometimes gets it right: a group whose rewards are all equal has zero
# advantage and teaches nothing. d1 starts from an SFT'd model; here we start from a **short**
# SFT (`cfg.grpo.sft_steps` steps of chapter 7's recipe, at `cfg.grpo.sft_learning_rate`). At
# `smoke` that leaves the two algorithms in different places: the short MDLM SFT mostly ends its
# turn at once (its rows are EOS-filled, chapter 7, and EOS is what it learns first), while the
# BD3LM one already answers with one digit, but rarely the right one.

# %%
start_cfg = cfg.replace(sft=dict(learning_rate=cfg.grpo.sft_learning_rate))
start = {
    algo: tutorial.load_diffusion_model(start_cfg, algo, sft=True, max_steps=cfg.grpo.sft_steps)
    for algo in TRAINERS
}
args = {algo: cfg.grpo_args(algo, cfg.output_dir(f"{algo}-grpo")) for algo in TRAINERS}
print({k: getattr(args["mdlm"], k) for k in ("learning_rate", "num_generations",
       "per_device_train_batch_size", "max_completion_length", "steps", "beta", "max_steps")})

# %% [markdown]
# Held-out rewards before training: greedy samples (temperature 0) of the same sampler the
# trainer uses, on prompts GRPO never sees.


# %%
def evaluate(algo: str, model, tok) -> dict:
    sampler_config = TRAINERS[algo].sampler_config_class(
        max_new_tokens=cfg.grpo.max_new_tokens, steps=cfg.grpo.max_new_tokens,
        block_size=args[algo].block_size, temperature=0.0,
    )  # fmt: skip
    return curves.held_out_reward(model, tok, SAMPLERS[algo], test, reward_funcs, sampler_config)


before = {algo: evaluate(algo, *start[algo]) for algo in TRAINERS}
for algo, result in before.items():
    print(algo, result["rewards"])

# %% [markdown]
# ## Training
#
# `MDLMGRPOTrainer` and `BD3LMGRPOTrainer` are TRL's `GRPOTrainer` with our sampler in place of
# AR generation and the estimates above in place of the causal log-probabilities. At `smoke`,
# with no reference copy on CPU ($\beta = 0$), one step generates 2 prompts × 8 completions,
# scores them, and takes one optimizer step.

# %%
logs = {}
for algo, trainer_cls in TRAINERS.items():
    torch.manual_seed(0)
    model, tok = start[algo]
    trainer = trainer_cls(model.train(), reward_funcs, args[algo], train_dataset=train,
                          processing_class=tok)  # fmt: skip
    trainer.train()
    logs[algo] = trainer.state.log_history

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
for ax, (algo, log) in zip(axes, logs.items(), strict=True):
    for name in cfg.grpo.rewards:
        ax.plot(curves.logged(log, f"rewards/{name}/mean"), label=name, alpha=0.8)
    ax.set(title=f"{algo}: mean reward of each step's completions", xlabel="GRPO step")
axes[0].set_ylabel("reward")
axes[0].legend()
fig  # noqa: B018 (displays the figure)

# %% [markdown]
# Mean reward of the first and the last quarter of the logged steps:

# %%
quarters = {algo: curves.quarter_means(curves.logged(log)) for algo, log in logs.items()}
for algo, (first, last) in quarters.items():
    print(f"{algo:6s} first quarter {first:.3f}  last quarter {last:.3f}")

# %%
if SCALE == "smoke":  # what this chapter claims at its own scale
    first, last = quarters["mdlm"]
    assert last > first, ("mdlm", first, last)  # the MDLM reward rises
    first, last = quarters["bd3lm"]  # BD3LM starts at the one-digit ceiling: it must keep it
    assert last >= 0.8, ("bd3lm", first, last)

# %% [markdown]
# ## Before and after
#
# The same greedy sampler on the same held-out prompts:

# %%
after = {algo: evaluate(algo, *start[algo]) for algo in TRAINERS}
for algo in TRAINERS:
    print(f"{algo:6s} before {before[algo]['rewards']}\n       after  {after[algo]['rewards']}")
for i in range(6):
    row = test[i]
    print(f"{row['prompt'][-1]['content']!r:34s} answer {row['answer']!r:4s} "
          f"before {before['mdlm']['completions'][i][:14]!r:18s} "
          f"after {after['mdlm']['completions'][i][:14]!r}")

# %% [markdown]
# At this scale what GRPO improves is mostly the **format**: the MDLM model learns to answer with
# a digit at all (its greedy held-out answers go from none to nearly all single digits), and the
# reward curve rises by that; the BD3LM one already answers with one digit, and what GRPO has to
# do there is keep it (its curve stays near the format reward's ceiling of 1). Whether the digit
# is right is a capability the 160k-parameter model must get from SFT (chapter 7); a reward
# alone, in 60 steps, moves it little. Push harder and it can do worse: at lr $10^{-3}$ (this
# scale's earlier setting) the MDLM reward fell from 0.59 to 0.24 on one CPU and rose on another,
# and at $5 \times 10^{-4}$ one seed in three collapsed both rewards to 0 (one reason GPU runs
# use lr $3 \times 10^{-6}$, a KL term and clipping; try
# `cfg.grpo_args(algo, dir, learning_rate=1e-3)`).
# On real models the answer rewards move too: d1 reports gsm8k, MATH, countdown and sudoku gains
# for LLaDA-8B.

# %% [markdown]
# ## On a GPU: dLLM's settings
#
# dLLM's `examples/rl/grpo` runs diffu-GRPO on the Tiny-A2D models with LoRA ($r = 128$,
# $\alpha = 64$), 6 generations, 12 policy iterations per batch, $\beta = 0.04$,
# $\varepsilon = 0.5$, $p_\text{mask} = 0.15$, completions of 256 tokens in 128 steps and blocks
# of 32, lr $3 \times 10^{-6}$. The same flags work here, for both algorithms:

# %%
warmup = tutorial.get_scale("warmup")
for algo in TRAINERS:
    print(f"accelerate launch --config_file a2dkit/accelerate_configs/zero2.yaml "
          f"-m a2dkit.cli.{algo}.grpo \\\n  --model_name_or_path "
          f"dllm-hub/Qwen3-0.6B-diffusion-{algo}-v0.1 --dataset {warmup.grpo.dataset} \\\n"
          f"  --lora_r 128 --lora_alpha 64 --num_generations 6 --num_iterations 12 "
          f"--beta 0.04 --epsilon 0.5 --p_mask_prompt 0.15 \\\n  --max_completion_length 256 "
          f"--steps 128 --block_size 32 --learning_rate 3e-6 --bf16 True "
          f"--output_dir models/{algo}-grpo\n")  # fmt: skip
print("sbatch slurm/grpo_tiny_a2d_mdlm.sh    # 1 node x 8 GPUs, ZeRO-2; DATASET=countdown ...")
print("DRY_RUN=1 bash slurm/grpo_tiny_a2d_bd3lm.sh   # check the recipe first")

# %% [markdown]
# ## Summary
#
# - GRPO scores a group of samples per prompt and pushes each token by its completion's reward
#   relative to the group; clipping and a KL to the reference keep the steps small.
# - diffu-GRPO replaces the causal log-probabilities by a one-step masked estimate (MDLM); for
#   BD3LM we estimate each block fully masked, conditioned on the clean blocks before it.
# - Rewards are programs: answer checks, format checks, and sandboxed code; a failing reward
#   scores 0 and never stops the run.
# - The kit's trainers are TRL's `GRPOTrainer` with two methods changed; the CLI
#   (`a2dkit.cli.{mdlm,bd3lm}.grpo`) and `slurm/grpo_tiny_a2d_*.sh` take dLLM's flags.
#
# ## Exercises
#
# 1. Train with `exact_match` alone (`rewards.get_rewards(["exact_match"])`). Does the held-out
#    exact match move? Start instead from chapter 7's full SFT model and compare.
# 2. Set `num_iterations=2` in `cfg.grpo_args(...)`: each batch is reused for two steps. What
#    happens to the logged `clip_ratio`?
# 3. Write a reward that prefers short answers and check, with `rewards.guarded`, what happens
#    when it raises.
#
# ## References
#
# - Zhao et al., *d1: Scaling Reasoning in Diffusion Large Language Models via Reinforcement
#   Learning* (diffu-GRPO), arXiv 2504.12216.
# - Shao et al., *DeepSeekMath* (GRPO), arXiv 2402.03300.
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM), arXiv 2406.07524.
# - Arriola et al., *Block Diffusion* (BD3LM), arXiv 2503.09573.
# - dLLM, `examples/rl/grpo`; TRL, `GRPOTrainer`.
