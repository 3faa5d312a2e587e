"""Bench: Fast-dLLM confidence-threshold decoding vs the fixed-steps sampler on the SFT'd models of
a scale (MDLM and BD3LM), on the held-out synthetic split: forward passes per generated token, their
ratio (target >= 3x fewer) and exact match of both decoders, measured in one run.

Run: A2DKIT_SCALE=smoke python bench/bench_threshold.py   (trains the two SFT models once, cached)
References: Fast-dLLM arXiv 2505.22618; MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import os
import time

import torch

from a2dkit import data, tutorial
from a2dkit.eval import exact_match
from a2dkit.samplers import BD3LMSampler, MDLMSampler

THRESHOLD = 0.9  # Fast-dLLM's default
TARGET = 3.0  # fixed / threshold forward passes per token
SAMPLERS = {"mdlm": MDLMSampler, "bd3lm": BD3LMSampler}


def main() -> int:
    cfg = tutorial.get_scale(os.environ.get("A2DKIT_SCALE", "smoke"))
    torch.manual_seed(0)
    test = data.load_dataset_args(cfg.sft.dataset_args)["test"]
    test = test.select(range(min(len(test), cfg.sft.num_eval_examples)))
    sampling = dict(max_new_tokens=cfg.sampling.max_new_tokens, steps=cfg.sampling.steps)
    sampling["block_size"] = cfg.sft.block_size  # the SFT models' blocks
    print(f"scale={cfg.name}: {len(test)} held-out prompts of {cfg.sft.dataset_args!r}, "
          f"temperature 0, {sampling}, threshold={THRESHOLD}")  # fmt: skip
    results = {}
    for algo, sampler_cls in SAMPLERS.items():
        model, tokenizer = tutorial.load_diffusion_model(cfg, algo, sft=True)
        start = time.perf_counter()
        results[algo] = exact_match.compare_decoders(
            model, tokenizer, test, sampler_cls, threshold=THRESHOLD, **sampling
        )
        print(f"[{algo}: both decoders in {time.perf_counter() - start:.1f}s]", flush=True)
    print(exact_match.decoder_table(results))
    for algo, r in results.items():
        met = "met" if r["nfe_ratio"] >= TARGET else "MISSED"
        print(f"{algo}: {r['nfe_ratio']:.2f}x fewer forward passes per token "
              f"(target >= {TARGET:g}x: {met})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
