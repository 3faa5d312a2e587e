"""Bench: BD3LMSampler (KV cache, prefix encoded once) vs the model card's naive algorithm (prefix
re-encoded every block, cache deep-copied every step), and threshold decoding's forward passes.

Run: python bench/bench_sampler.py          (CPU, 2 threads, a few minutes; ratios from one run)
References: BD3LM arXiv 2503.09573; Fast-dLLM arXiv 2505.22618 (threshold 0.9).
"""

from __future__ import annotations

import copy
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_samplers import naive_bd3lm_generate  # noqa: E402

from a2dkit.models import registry  # noqa: E402
from a2dkit.samplers import BD3LMSampler  # noqa: E402

VOCAB, MASK_ID, PAD_ID = 4096, 4095, 0
PROMPT_LEN, NUM_PROMPTS = 64, 2
THRESHOLD = 0.9  # Fast-dLLM's default: their accuracy stays at the fixed-step level up to 0.9


def build_model(seed: int = 0):
    """A ~22M-parameter random-init A2D Qwen3 (hidden 512, 6 layers, vocab 4096), fp32, eval."""
    from transformers import AutoModelForMaskedLM

    registry.register_all()
    config = registry.A2D_CONFIGS["a2d-qwen3"](
        vocab_size=VOCAB, hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
        num_key_value_heads=4, head_dim=64, intermediate_size=1408, max_position_embeddings=1024,
        tie_word_embeddings=False, is_causal=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa").float().eval()
    # the card's code may predict <|mask|>, a2dkit never does: keep the model off that token
    model.lm_head.weight.data[MASK_ID] = 0.0
    return model


def prompts(seed: int = 1) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, MASK_ID, (NUM_PROMPTS, PROMPT_LEN), generator=gen).tolist()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def compare(model, sampler, prompt: list[int], block_size: int, new: int):
    """(naive seconds, our seconds, identical tokens?) for one prompt, steps = new tokens."""
    kw = dict(max_new_tokens=new, block_size=block_size, steps=new)
    ref, t_ref = timed(lambda: naive_bd3lm_generate(
        model, prompt, mask_id=MASK_ID, pad_id=PAD_ID, eos_id=None, **kw))  # fmt: skip
    out, t_ours = timed(lambda: sampler.sample([prompt], return_history=False, **kw))
    same = torch.equal(out.sequences[0, out.gen_start :], ref[0, len(prompt) :])
    return t_ref, t_ours, same


def speed_table(model, sampler) -> list[dict]:
    rows = []
    for new in (128, 256):
        for block_size in (16, 32):
            runs = [compare(model, sampler, p, block_size, new) for p in prompts()]
            t_ref, t_ours = sum(r[0] for r in runs), sum(r[1] for r in runs)
            tokens = new * len(runs)
            rows.append(dict(new=new, block=block_size, naive=tokens / t_ref,
                             ours=tokens / t_ours, ratio=t_ref / t_ours,
                             identical=all(r[2] for r in runs)))  # fmt: skip
            print("  {new:4d} {block:3d}  {naive:7.1f} {ours:7.1f}  {ratio:5.2f}x  {identical}"
                  .format(**rows[-1]), flush=True)  # fmt: skip
    return rows


def mean_confidence(model, prompt: list[int], new: int) -> float:
    """Mean max-probability the model gives the masked positions of a fresh canvas."""
    x = torch.tensor([prompt + [MASK_ID] * new])
    with torch.no_grad():
        probs = model(x).logits[0, len(prompt) :].softmax(-1)
    return probs.max(-1).values.mean().item()


def sharpen(model, target: float = 0.5):
    """Copy of the model with the LM head scaled so that mean_confidence == target (bisection):
    a stand-in for a trained model, whose predictions are peaked where random ones are flat."""
    lo, hi, base = 1.0, 1000.0, model.lm_head.weight.data.clone()
    sharp = copy.deepcopy(model)
    for _ in range(25):
        mid = (lo * hi) ** 0.5
        sharp.lm_head.weight.data = base * mid
        lo, hi = (mid, hi) if mean_confidence(sharp, prompts()[0], 32) < target else (lo, mid)
    return sharp, mid


def threshold_row(name: str, model, new: int = 256, block_size: int = 32) -> dict:
    sampler = BD3LMSampler(model, TOKENIZER)
    kw = dict(max_new_tokens=new, block_size=block_size, steps=new, return_history=False)
    fixed = sampler.sample(prompts(), **kw)
    fast = sampler.sample(prompts(), threshold=THRESHOLD, **kw)
    gen = slice(fixed.gen_start, None)
    agree = (fixed.sequences[:, gen] == fast.sequences[:, gen]).float().mean().item()
    conf = mean_confidence(model, prompts()[0], block_size)
    row = dict(name=name, conf=conf, fixed=fixed.nfe / new, fast=fast.nfe / new,
               ratio=fixed.nfe / fast.nfe, agree=agree)  # fmt: skip
    print("  {name:22s} {conf:5.3f}  {fixed:5.3f}  {fast:5.3f}  {ratio:5.2f}x  {agree:5.3f}"
          .format(**row), flush=True)  # fmt: skip
    return row


# the samplers only read these three ids from the tokenizer; EOS is off so every run is full-length
TOKENIZER = types.SimpleNamespace(mask_token_id=MASK_ID, eos_token_id=None, pad_token_id=PAD_ID)


def main() -> int:
    torch.set_num_threads(2)
    model = build_model()
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"model: {millions:.1f}M parameters, {NUM_PROMPTS} prompts x {PROMPT_LEN} tokens, "
          "temperature 0, steps = new tokens")  # fmt: skip
    print("\nBD3LM tokens/s (naive = model-card generate: prefix re-encoded per block, deepcopy)")
    print("   new blk    naive    ours  speedup identical")
    rows = speed_table(model, BD3LMSampler(model, TOKENIZER))
    sharp, scale = sharpen(model)
    print(
        f"\nthreshold={THRESHOLD} decoding, 256 new tokens, block 32 (sharpened: head x{scale:.1f})"
    )
    print("  model                   conf  fixed  thresh  fewer  agree  (NFE per token)")
    threshold_row("random init", model)
    threshold_row("sharpened (conf 0.5)", sharp)
    target = next(r for r in rows if r["new"] == 256 and r["block"] == 32)
    print(f"\nspeedup at 256 new tokens, block 32: {target['ratio']:.2f}x (target >= 1.1x)")
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
