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
# # 2. Converting an AR Model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/02_converting_an_ar_model.ipynb)
#
# Converting an AR model into a diffusion model changes **no weight**. Three things change:
# attention stops being causal (MDLM) or becomes block-causal "staircase" attention (BD3LM), a
# `<|mask|>` token is added, and the config is relabelled (`qwen3` -> `a2d-qwen3`). Before any
# training, a set of checks proves the surgery did exactly that.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - how `convert.detect` decides from a config alone whether a model converts, and why some
#   architectures are refused;
# - what `convert.to_diffusion` does, and the identity gate that proves no weight changed;
# - the **attention contract** every converted model must pass before training;
# - the three attention masks of A2D: bidirectional, block-causal and the BD3LM staircase.
#
# ## What you'll need
#
# - chapter 1 (the source model, cached at `smoke`);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (well under a minute; about two minutes
#   at `laptop`, with `a2dkit[smollm2]`).

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import copy

import matplotlib.pyplot as plt
import torch
from transformers import AutoModelForMaskedLM

from a2dkit import convert, tutorial, viz
from a2dkit.contract import checks
from a2dkit.diffusion import attention
from a2dkit.samplers import MDLMSampler
from a2dkit.samplers.prompts import encode

torch.manual_seed(0)
source, tokenizer, _ = tutorial.load_source_model(cfg)  # cached since chapter 1

# %% [markdown]
# ## Detect: a verdict from the config alone
#
# `convert.detect` reads only the config (no weights, no GPU) and answers *whether* and *how*
# a model converts. A2D needs a decoder-only transformer whose attention mask it can replace.

# %%
verdict = convert.detect(source.config)
print(verdict)
assert verdict.supported and verdict.target_model_type == f"a2d-{source.config.model_type}"

# %% [markdown]
# Models the mechanism does not fit are refused **with their reasons**, never silently
# mis-converted: encoder-only models are already bidirectional, and a state-space model has no
# attention mask to open. A sliding-window model converts, and keeps its window in every mask.

# %%
for config in (
    {"model_type": "bert"},
    {"model_type": "mamba"},
    {"model_type": "mistral", "sliding_window": 4096},
):
    print(convert.detect(config), "\n")

# %%
refused = convert.detect({"model_type": "bert"})
assert not refused.supported and any("encoder-only" in r for r in refused.reasons)

# %% [markdown]
# ## Convert: same weights, new mask, one new token
#
# `to_diffusion` builds the `a2d-*` twin of the model class, copies the state dict (every key
# must match: a fixed allow-list is the only exception) and adds `<|mask|>`. When the embedding
# matrix has spare rows (Qwen3 pads its vocabulary; so do a2dkit's tiny models) the mask token
# takes one of them and nothing is resized; otherwise (SmolLM2 uses all 49,152 rows) the
# embedding gets one new row and every old row is kept.

# %%
viz.show_source(convert.to_diffusion)

# %%
a2d, a2d_tokenizer, info = convert.to_diffusion(source, copy.deepcopy(tokenizer))
print(type(a2d).__name__, info)

# %%
src_state, a2d_state = source.state_dict(), a2d.state_dict()
assert src_state.keys() == a2d_state.keys()
assert all(torch.equal(v, a2d_state[k][: len(v)]) for k, v in src_state.items())  # bit-identical
spare_row = source.get_input_embeddings().weight.shape[0] > len(tokenizer)
assert info["reused_spare_row"] == spare_row and a2d_tokenizer.mask_token_id < a2d.config.vocab_size

# %% [markdown]
# ## The identity gate
#
# If nothing but the mask changed, then driving the converted model *with a causal mask* must
# reproduce the source model's logits exactly. `convert.convert` runs this gate before it saves
# anything; a failed gate means the surgery changed more than the mask.

# %%
gate = convert.identity_gate(source, a2d, convert.gate_batch(source.config.vocab_size))
print(gate)
assert gate["passed"] and gate["max_abs_diff"] <= gate["atol"]

# %% [markdown]
# ## Three attention masks
#
# A converted model is driven by one of three boolean masks (True = query row may attend to
# key column), all built from one predicate in `a2dkit.diffusion.attention`:
#
# - **bidirectional** (MDLM): every real token sees every real token; pads are never keys;
# - **block-causal** (sampling with blocks): bidirectional inside a block, causal across blocks;
# - **staircase** (BD3LM training) over the $2L$ input $[x_t; x_0]$: the union of $M_{BD}$
#   (block-diagonal), $M_{OBC}$ (noisy block $b$ sees clean blocks $< b$) and $M_{BC}$ (clean
#   block $b$ sees clean blocks $\le b$); BD3LM §3.2.

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
viz.plot_mask(viz.build_mask("bidirectional", 8, num_pad=2), ax=axes[0], title="bidirectional")
viz.plot_mask(viz.build_mask("block_causal", 8, block_size=2), ax=axes[1], title="block-causal")
viz.plot_mask(attention.staircase_mask(4, 2), ax=axes[2], title="staircase", split=4)
fig.tight_layout()

# %% [markdown]
# Counting by hand: with 2 left pads out of 8, the bidirectional mask has $6 \times 6 = 36$
# allowed pairs in real rows. The staircase mask over $L = 4$, block size 2 has
# $L (L + \text{block size}) = 24$ allowed pairs, and with block size 1 its clean half is
# exactly the causal mask of chapter 1.

# %%
assert viz.build_mask("bidirectional", 8, num_pad=2)[2:].sum() == 36
assert attention.staircase_mask(4, 2).sum() == 4 * (4 + 2)
clean_half = attention.staircase_mask(6, 1)[6:, 6:]  # x_0 attends to x_0
assert torch.equal(clean_half, torch.tril(torch.ones(6, 6, dtype=torch.bool)))

# %% [markdown]
# Explore the masks yourself (length, block size, padding). In the book the widget is live;
# in Jupyter, drag the sliders.

# %%
viz.MaskExplorer(length=8, block_size=2)

# %% [markdown]
# ## The attention contract
#
# The masks only help if the model honours them. `checks.run_contract` checks the four
# behaviours dLLM's A2D tests check, on *any* converted model:
#
# 1. **padding invariance**: real-token logits do not depend on left/right padding or batching;
# 2. **future affects past**: changing token 2 changes the logits at position 1 (and, given the
#    source, does *not* in the AR model);
# 3. **staircase KV-cache equivalence**: a block-causal forward equals block-by-block decoding
#    with a KV cache (what the BD3LM sampler does, chapter 6);
# 4. **block isolation**: under the staircase mask, noisy block $b$ ignores everything but its
#    own block and the clean blocks before it.

# %% [markdown]
# The checks run on float64 copies: two computations that agree exactly in exact arithmetic
# differ by float32 rounding, which grows with depth (about $5 \times 10^{-4}$ on SmolLM2's 30
# layers), while in float64 a correct conversion agrees to rounding far below any threshold.

# %%
a2d64, source64 = copy.deepcopy(a2d).double(), copy.deepcopy(source).double()
results = checks.run_contract(a2d64, source=source64)
for r in results:
    status = "PASS" if r.passed else "FAIL"
    print(f"{status}  {r.name:32s} {r.value:.2e} (threshold {r.threshold:g})")
assert all(r.passed for r in results)

# %% [markdown]
# A check that cannot fail proves nothing. The *unconverted* AR model must fail "future affects
# past": its future cannot affect its past. It may fail padding invariance too, for a reason of
# its own: a Hugging Face causal model numbers positions from the first column, pads included,
# so left padding shifts every RoPE position by the number of pads. RoPE depends only on
# relative positions in exact arithmetic, but its cos/sin tables are computed in float32, so
# the shift changes the logits by rounding that grows with depth (visible on SmolLM2's 30
# layers, not on the 2-layer smoke model). The converted models number positions from the first
# real token (as the samplers do), so pads change nothing beyond float64 rounding.

# %%
failed = [r.name for r in checks.run_contract(source64) if not r.passed]
print("the AR source fails:", failed)
assert "future affects past" in failed and set(failed) <= {"future affects past",
                                                            "padding invariance"}

# the cause, measured: left padding = the same tokens at positions shifted by the pad count
x = torch.tensor([[11, 12, 13, 14, 15, 16]], device=cfg.device)
ids, mask = torch.cat([torch.zeros_like(x[:, :2]), x], 1), torch.tensor([[0, 0] + [1] * 6])
mask = mask.to(cfg.device)
with torch.no_grad():
    plain = source64(x).logits
    left = source64(ids, attention_mask=mask).logits[:, 2:]
    shifted = source64(x, position_ids=torch.arange(2, 8, device=cfg.device)[None]).logits
    skip_pads = (mask.cumsum(-1) - 1).clamp(min=0)  # position ids from the first real token
    skipping = source64(ids, attention_mask=mask, position_ids=skip_pads).logits[:, 2:]
shift_diffs = {"left padding": (left - plain).abs().max().item(),
               "positions shifted by 2, no pads": (shifted - plain).abs().max().item(),
               "left padding, positions skip the pads": (skipping - plain).abs().max().item()}
for name, value in shift_diffs.items():
    print(f"{name:40s} max |logit difference| {value:.2e}")
# pad-skipping positions give the unpadded logits, and the pads themselves change nothing, only
# the positions do: both to float64 rounding (how many ulps depends on the CPU's BLAS kernels)
assert shift_diffs["left padding, positions skip the pads"] <= 1e-12
assert (left - shifted).abs().max().item() <= 1e-12

# %% [markdown]
# ## Saving a converted checkpoint
#
# On disk, `convert.convert` (or `python -m a2dkit.convert`) does the same and writes a standard
# Hugging Face checkpoint plus `a2d_manifest.json` (source hash, versions, the gate result).
# After `import a2dkit`, `AutoModelForMaskedLM` loads it without remote code.

# %%
out_dir = convert.convert(cfg.source_name_or_path(), cfg.output_dir("a2d-source"), overwrite=True)
print(sorted(p.name for p in out_dir.iterdir()))
reloaded = AutoModelForMaskedLM.from_pretrained(out_dir).to(cfg.device)
assert reloaded.config.model_type == a2d.config.model_type and not reloaded.config.is_causal
del a2d64, source64, reloaded  # the float64 copies are large at `laptop`

# %% [markdown]
# ## Before any diffusion training
#
# The converted model has the AR model's weights but now sees the whole sequence, and it was
# never trained to fill in `<|mask|>` tokens. Asked to denoise an answer (chapter 4's MDLM
# sampler: start from all masks, commit the most confident tokens step by step), it produces
# text that is not yet an answer: teaching it to denoise is what chapters 3-7 do.

# %%
question = [{"role": "user", "content": "What is the capital of France?"}]
prompt = encode(a2d_tokenizer, question, chat_template=True)
out = MDLMSampler(a2d.eval(), a2d_tokenizer).sample(
    [prompt], max_new_tokens=cfg.sft.max_new_tokens, steps=cfg.sft.sampler_steps
)
print(repr(a2d_tokenizer.decode(out.sequences[0, out.gen_start : out.gen_end])))
assert not (out.sequences == a2d_tokenizer.mask_token_id).any()  # every mask was filled

# %% [markdown]
# ## Beyond Qwen3: the contract decides
#
# Nothing above is specific to one family. a2dkit builds the `a2d-<family>` class of any
# decoder-only transformers model at run time, and `convert.convert` first runs the contract in
# float64 on a tiny random instance of the family: it converts if every check holds and is
# refused, naming the check and its number, if one does not. The
# [support matrix](../support_matrix.md) is that gate run over every causal-LM model type of
# the installed transformers (`python -m a2dkit.cli.support_matrix` regenerates it):

# %%
import json

from IPython.display import Markdown, display

from a2dkit.contract import family_gate
from a2dkit.convert import support_matrix

matrix = json.loads(support_matrix.JSON_PATH.read_text())["rows"]
matrix_counts = support_matrix.counts(matrix)
display(Markdown("\n".join(["| verdict | model types |", "|---|---|"]
                           + [f"| {k} | {v} |" for k, v in matrix_counts.items()])))  # fmt: skip
converts = sorted(r["model_type"] for r in matrix if r["verdict"] == support_matrix.CONVERTS)
print(len(converts), "families convert, e.g.", ", ".join(converts[:12]), "...")
assert {"gemma", "olmo2", "qwen3_moe", "gemma3_text"} <= set(converts)

# %% [markdown]
# A second family, then: a tiny random **Gemma 3** text model (hidden 64, 2 layers), one of its
# layers a sliding-window layer. The same `to_diffusion` converts it (`a2d-gemma3_text`), the
# identity gate holds, and the float64 contract passes, including the window check: a key
# farther than the window leaves the sliding layer's output unchanged under the MDLM and the
# BD3LM masks.

# %%
from transformers import AutoConfig, Gemma3ForCausalLM

tiny_gemma = family_gate.shrink_config(AutoConfig.for_model("gemma3_text"))
tiny_gemma.vocab_size = source.config.vocab_size  # the chapter's tokenizer fits it
torch.manual_seed(0)
gemma = Gemma3ForCausalLM(tiny_gemma).eval()
print(tiny_gemma.layer_types, "window", tiny_gemma.sliding_window)
print(convert.detect(gemma.config))
a2d_gemma, gemma_tokenizer, gemma_info = convert.to_diffusion(gemma, copy.deepcopy(tokenizer))
print(type(a2d_gemma).__name__, a2d_gemma.config.model_type, gemma_info)
gemma_gate = convert.identity_gate(gemma, a2d_gemma, convert.gate_batch(tiny_gemma.vocab_size))
assert gemma_gate["passed"], gemma_gate

# %%
gemma_results = family_gate.run_generic_contract(gemma.double(), a2d_gemma.double())
for r in gemma_results:
    status = "PASS" if r.passed else "FAIL"
    print(f"{status}  {r.name:34s} {r.value:.2e} (threshold {r.threshold:g})")
assert all(r.passed for r in gemma_results)
assert any(r.name == "sliding window" and "window 4" in r.detail for r in gemma_results)

# %% [markdown]
# ## Summary
#
# - `detect` gives a verdict from the config alone and refuses encoder-only, encoder-decoder,
#   state-space/recurrent, linear-attention hybrid, own-causal-mask and already non-causal
#   models with named reasons; every other decoder-only family is left to the contract.
# - Any family the contract accepts converts (the support matrix lists them); sliding-window
#   families keep their window.
# - `to_diffusion` copies every weight bit for bit, adds `<|mask|>` (in a spare row when there
#   is one) and sets `is_causal=False`; the identity gate proves it.
# - Three masks drive the converted model; the attention contract checks it honours them, and
#   the AR source fails exactly the check that conversion exists for.
#
# ## Exercises
#
# 1. Convert a tiny GPT-2 (`a2dkit.tutorial.tiny.tiny_model("gpt2")`, tokenizer from chapter 1).
#    Does the mask token reuse a spare row? Why not?
# 2. Draw `attention.staircase_mask(8, 4)` and count its True entries by hand before checking
#    with `.sum()`.
# 3. Break the contract on purpose: pass `attention_mask=None` in the KV-cache check's second
#    call (read `checks.check_staircase_kv_cache`). Which check catches it, and by how much?
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM),
#   arXiv 2406.07524.
# - Arriola et al., *Block Diffusion: Interpolating Between Autoregressive and Diffusion
#   Language Models* (BD3LM), arXiv 2503.09573, §3.2 (the staircase mask).
# - Gong et al., *Scaling Diffusion Language Models via Adaptation from Autoregressive Models*
#   (DiffuLLaMA), arXiv 2410.17891.
