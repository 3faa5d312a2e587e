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
# # 7. SFT with MDLM and BD3LM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/07_sft_with_mdlm_and_bd3lm.ipynb)
#
# A converted model denoises text; supervised fine-tuning (SFT) teaches it to *answer*. The
# recipe is the AR one with a diffusion loss: conversations go through the chat template, the
# prompt is given and never noised, and only the answer is masked and predicted. We fine-tune the
# same source model with MDLM and with BD3LM, measure exact match on held-out questions before
# and after, and finally decode with a confidence threshold (Fast-dLLM) that needs several times
# fewer forward passes.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - how a chat becomes an SFT example: chat template, prompt labels $-100$, and why the prompt
#   is never noised;
# - why BD3LM pads each example with EOS up to a block multiple;
# - how to run SFT with the real `a2dkit.cli.{mdlm,bd3lm}.sft` entry points, and to measure its
#   effect by exact match on a held-out split;
# - confidence-threshold decoding: fewer forward passes per token for (nearly) the same answers.
#
# ## What you'll need
#
# - chapters 3–6 (the MDLM loss, the samplers, BD3LM's staircase mask);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (about two minutes: two short SFT runs); at
#   `laptop` about ten minutes on 2 cores (two SFT runs of SmolLM2-135M and the exact-match evals).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import copy

import matplotlib.pyplot as plt
import torch

from a2dkit import convert, data, tutorial, viz
from a2dkit.data import preprocess
from a2dkit.diffusion import denoise, masking
from a2dkit.eval import exact_match
from a2dkit.samplers import BD3LMSampler, MDLMSampler

torch.manual_seed(0)
print(f"scale={cfg.name}: SFT data {cfg.sft.dataset_args!r}, {cfg.sft.steps} steps")

# %% [markdown]
# ## The instruction data
#
# `cfg.sft.dataset_args` uses the dLLM `--dataset_args` grammar. At `warmup` it is alpaca; at
# `smoke`, offline, the kit generates its own instruction set (`a2dkit.data.synthetic`): small tasks
# in chat format (adding, copying, reversing, sorting, picking the first or last digit), each
# with one exact answer, and a **held-out test split** whose prompts never occur in training.
# The smoke run picks the tasks a 160k-parameter model learns in a minute on a CPU.

# %%
raw = data.load_dataset_args(cfg.sft.dataset_args)
train, test = raw["train"], raw["test"]
print(raw)
print(train[0]["messages"])

# %%
train_prompts = {m[0]["content"] for m in train["messages"]}
assert not any(m[0]["content"] in train_prompts for m in test["messages"])  # held out
assert len(test) >= cfg.sft.num_eval_examples

# %% [markdown]
# ## From a chat to an SFT example
#
# The SFT loss is the MDLM loss of chapter 3 with the prompt $p$ held fixed: only answer tokens
# are ever masked, and the model predicts them given the noisy answer *and the clean prompt*:
#
# $$\mathcal{L}_{\text{SFT}} = \mathbb{E}_{t}\; w(t) \sum_{i \in \text{answer}}
#   \mathbb{1}[x_t^i = \text{[MASK]}]\; \big(-\log p_\theta(x_0^i \mid x_t, p)\big).$$
#
# `preprocess.tokenize_sft` templates the chat, then labels every prompt token (up to and
# including the assistant header) with $-100$; the trainer masks only tokens whose label is not
# $-100$, so the prompt is never noised.

# %%
source, tokenizer, _ = tutorial.load_source_model(cfg)  # cached since chapter 1
base, base_tok = convert.to_diffusion(copy.deepcopy(source), copy.deepcopy(tokenizer))[:2]
example = preprocess.tokenize_sft(train[0], tokenizer, max_length=cfg.sft.max_length)
ids, labels = example["input_ids"], example["labels"]
print(tokenizer.decode(ids))
print([(tokenizer.decode([i]), lab != -100) for i, lab in zip(ids, labels, strict=True)][-12:])

# %% [markdown]
# Check it by hand: the unsupervised part is exactly the prompt the sampler will be given at
# test time (`synthetic.chat_prompts`), and what is supervised decodes to the answer followed by
# the end-of-turn marker.

# %%
prompt = data.chat_prompts(train.select([0]), tokenizer)[0]
n_prompt = labels.count(-100)
assert n_prompt == len(prompt) and ids[:n_prompt] == prompt
answer = tokenizer.decode(ids[n_prompt:])
print(repr(answer))
assert answer.startswith(train[0]["answer"] + "<|im_end|>")

# %% [markdown]
# Noise the example at a large $t$: the forward process of chapter 3 masks each *maskable*
# token with probability $1 - \alpha(t)$, and the prompt is not maskable.

# %%
x0 = torch.tensor([ids])  # (1, L)
maskable = torch.tensor([labels]) != -100  # (1, L)
xt, masked = masking.mask_tokens(x0, torch.tensor([0.9]), maskable, base_tok.mask_token_id)
assert not masked[:, :n_prompt].any() and torch.equal(xt[:, :n_prompt], x0[:, :n_prompt])
print(f"{int(masked.sum())} of {int(maskable.sum())} answer tokens masked, prompt intact")

# %% [markdown]
# ## BD3LM: whole blocks, padded with EOS
#
# BD3LM trains on $[x_t; x_0]$ under the staircase mask, which needs whole blocks. The recipe
# pads every SFT example with **EOS up to a block multiple**; those EOS are labelled (the model
# learns to stop inside a block) and attended. The batch is then right-padded to a block
# multiple with ignored pad positions. This is what `a2dkit.cli.bd3lm.sft` does, in blocks of
# `cfg.sft.block_size` (SFT's own block size; chapter 5 pretrained in `cfg.pretrain.block_size`).

# %%
bs = cfg.sft.block_size
collate = preprocess.DiffusionCollator(
    tokenizer, pad_to_multiple_of=bs, pad_with_eos_to_multiple=bs
)
rows = [preprocess.tokenize_sft(r, tokenizer, max_length=cfg.sft.max_length) for r in train]
batch = collate(rows[:4])
print({k: tuple(v.shape) for k, v in batch.items()})

# %%
eos_added = -len(ids) % bs  # EOS appended to example 0
row0 = batch["input_ids"][0, len(ids) : len(ids) + eos_added]
assert batch["input_ids"].shape[1] % bs == 0
assert (row0 == tokenizer.eos_token_id).all()
assert (batch["labels"][0, len(ids) : len(ids) + eos_added] == tokenizer.eos_token_id).all()

# %% [markdown]
# The picture: each row of the batch, prompt (ignored), answer (supervised), EOS padding
# (supervised) and batch padding (ignored); dotted lines are block boundaries.

# %%
kind = torch.where(batch["labels"] == -100, 0, 1)  # 0 prompt/pad, 1 answer
kind[(batch["labels"] == tokenizer.eos_token_id) & (batch["attention_mask"] == 1)] = 2
kind[batch["attention_mask"] == 0] = 3
fig, ax = plt.subplots(figsize=(9, 2))
ax.imshow(kind, cmap=plt.get_cmap("Accent", 4), vmin=-0.5, vmax=3.5, aspect="auto")
for b in range(bs, kind.shape[1], bs):
    ax.axvline(b - 0.5, color="k", ls=":")
ax.set(xlabel="position", ylabel="row", title="prompt | answer | EOS pad | batch pad")

# %% [markdown]
# ## Before SFT
#
# The starting point of both runs is the source AR model, converted (chapter 2). At `smoke` it
# has only seen Shakespeare; at `laptop` it is an instruct model that was never trained to fill
# masks. Either way we expect it to answer (almost) nothing correctly.
# `exact_match.exact_match_eval` samples an answer for each held-out prompt, cuts it at the first
# end-of-turn, compares it with the reference, and counts forward passes.

# %%
viz.show_source(exact_match.exact_match_eval)

# %%
test = test.select(range(cfg.sft.num_eval_examples))
sampling = dict(max_new_tokens=cfg.sft.max_new_tokens, steps=cfg.sft.sampler_steps)
sampling["block_size"] = cfg.sft.block_size  # MDLM: semi-autoregressive blocks; BD3LM: its own
before = {
    name: exact_match.exact_match_eval(base, base_tok, test, cls, **sampling)
    for name, cls in (("mdlm", MDLMSampler), ("bd3lm", BD3LMSampler))
}
print({k: v["accuracy"] for k, v in before.items()}, repr(before["mdlm"]["predictions"][0][:40]))

# %% [markdown]
# ## SFT with MDLM and with BD3LM
#
# `tutorial.load_diffusion_model(cfg, algo, sft=True)` runs the real entry point once (the same
# command you would type, below) starting from the source model, caches
# `<output_dir>/checkpoint-final`, and loads it. Both recipes train on answers followed by
# labelled EOS (BD3LM: up to a block multiple), so that at test time the model fills the rest of
# its canvas with EOS instead of guessing where the answer ends.

# %%
print("python -m a2dkit.cli.bd3lm.sft --model_name_or_path", cfg.source_name_or_path(),
      *cfg.cli_flags("bd3lm", sft=True))  # fmt: skip
models = {algo: tutorial.load_diffusion_model(cfg, algo, sft=True) for algo in ("mdlm", "bd3lm")}

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for algo in models:
    log = tutorial.training_log(cfg, algo, sft=True)
    ax.plot([r["step"] for r in log], [r["loss"] for r in log], marker="o", label=algo)
ax.set(xlabel="step", ylabel="train loss", title="SFT")
ax.legend()

# %% [markdown]
# ## Exact match before and after
#
# Same held-out prompts, same sampler settings (temperature 0, one token per step).

# %%
samplers = {"mdlm": MDLMSampler, "bd3lm": BD3LMSampler}
after = {
    algo: exact_match.exact_match_eval(model, tok, test, samplers[algo], **sampling)
    for algo, (model, tok) in models.items()
}
for algo in after:
    print(f"{algo:6s} before {before[algo]['accuracy']:.3f}  after {after[algo]['accuracy']:.3f}",
          after[algo]["by_task"])  # fmt: skip

# %%
for algo in after:
    gain = after[algo]["accuracy"] - before[algo]["accuracy"]
    assert gain > 0 and gain >= cfg.sft.min_gain, (algo, gain)  # SFT helps both, by a margin

# %%
for p, r in list(zip(after["bd3lm"]["predictions"], after["bd3lm"]["references"], strict=True))[:6]:
    print(f"{r!r:28s} <- {p.split('<|im_end|>')[0]!r}")

# %% [markdown]
# ## Faster decoding: a confidence threshold
#
# The fixed-steps sampler commits a fixed number of tokens per step. Fast-dLLM (arXiv 2505.22618)
# commits **every** masked token whose confidence exceeds a threshold $\tau$, and at least the
# most confident one, so easy stretches (the EOS tail, a copied word) fill in one pass:
#
# $$\text{commit}_s = \{\, i : \max_v p_\theta(x^i = v \mid x_s) > \tau \,\}
#   \cup \{\arg\max_i \max_v p_\theta(x^i = v \mid x_s)\}.$$
#
# Both samplers accept `threshold=`; `select_transfer` is the one place it acts.

# %%
viz.show_source(denoise.select_transfer)

# %% [markdown]
# Check it by hand: with confidences $(0.95, 0.5, 0.97, 0.2)$, all masked, and $\tau = 0.9$,
# positions 0 and 2 are committed; with $\tau = 0.99$ only the most confident, position 2.

# %%
conf, cand = torch.tensor([[0.95, 0.5, 0.97, 0.2]]), torch.ones(1, 4, dtype=torch.bool)
assert denoise.select_transfer(conf, cand, None, 0.9).tolist() == [[True, False, True, False]]
assert denoise.select_transfer(conf, cand, None, 0.99).tolist() == [[False, False, True, False]]

# %% [markdown]
# Now on the held-out split: forward passes per generated token and exact match, fixed steps
# against $\tau = 0.9$ (`exact_match.compare_decoders`). `bench/bench_threshold.py` prints the same
# table.

# %%
fast = {
    algo: exact_match.compare_decoders(model, tok, test, samplers[algo], threshold=0.9, **sampling)
    for algo, (model, tok) in models.items()
}
print(exact_match.decoder_table(fast))

# %% [markdown]
# Both recipes taught the model what follows an answer: EOS. BD3LM fills the rest of a block
# with EOS and stops after the block that holds the answer. The MDLM rows are filled with
# labelled EOS up to the batch length, or, with `--pad_to_max_length` (the `smoke` scale), up to
# `sft_max_length`, longer than any prompt plus `max_new_tokens` here: then every canvas
# position was seen in training and the EOS tail is committed in a pass or two. Without that
# fill, positions past the short training rows get low-confidence junk, committed almost one
# token per pass (exact match, which cuts at the first end-of-turn, never looks at it).

# %%
for algo, r in fast.items():
    assert r["threshold"]["nfe_per_token"] < r["fixed"]["nfe_per_token"], algo
    assert r["fixed"]["accuracy"] == after[algo]["accuracy"]  # same sampler, same answers

# %% [markdown]
# Where do the passes go? One held-out prompt decoded by the SFT'd BD3LM model with the
# threshold: each column is coloured by the step that committed it; many share a step.

# %%
model, tok = models["bd3lm"]
out = BD3LMSampler(model, tok).sample(data.chat_prompts(test.select([0]), tok),
                                      threshold=0.9, **sampling)  # fmt: skip
print(f"{out.nfe} forward passes for {out.gen_end - out.gen_start} generated positions")
viz.plot_trajectory(out.history, tok)

# %% [markdown]
# ## Summary
#
# - SFT data is the AR chat format: the chat template, prompt labels $-100$, and a loss on the
#   answer only; the prompt is never noised, so the model learns $p_\theta(\text{answer} \mid
#   \text{prompt})$.
# - BD3LM SFT pads every example with labelled EOS to a block multiple: the model learns to end
#   an answer inside a block, which lets the block sampler stop early.
# - A short SFT run takes exact match on held-out prompts from zero to well above it, with both
#   recipes.
# - Threshold decoding commits every confident token at once: fewer forward passes per token for
#   (nearly) the same answers. It gains most where the model is sure of whole stretches, like
#   BD3LM's EOS-filled blocks.
#
# ## Exercises
#
# 1. Lower the threshold to 0.5 and 0.7. How do forward passes and exact match trade off?
# 2. Train MDLM SFT with `mask_prompt_loss=False` (`--mask_prompt_loss False`): what does the model
#    spend its capacity on, and does exact match change?
# 3. Which synthetic task (`by_task`) is learnt first? Why is `add` the hardest for a tiny model?
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM), arXiv 2406.07524.
# - Arriola et al., *Block Diffusion: Interpolating Between Autoregressive and Diffusion
#   Language Models* (BD3LM), arXiv 2503.09573.
# - Nie et al., *Large Language Diffusion Models* (LLaDA, SFT of a diffusion LM),
#   arXiv 2502.09992.
# - Wu et al., *Fast-dLLM: Training-free Acceleration of Diffusion LLM by Enabling KV Cache and
#   Parallel Decoding*, arXiv 2505.22618.
