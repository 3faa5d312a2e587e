"""Bench: held-out reward before and after diffu-GRPO, with one fixed greedy sampler, in one run.

The SFT'd model of a scale (chapter 7's, cached) is GRPO-trained on the train split of a kit
task; the mean reward of greedy samples on the disjoint test split is measured before and after.
Run: A2DKIT_SCALE=smoke python bench/bench_grpo.py --algo mdlm --dataset a2dkit/synthetic \
    --reward exact_match --max_steps 40
References: d1 arXiv 2504.12216 (diffu-GRPO); GRPO arXiv 2402.03300.
"""

from __future__ import annotations

import argparse
import os
import time

from a2dkit import scales
from a2dkit.grpo import BD3LMGRPOTrainer, DiffuGRPOConfig, MDLMGRPOTrainer, curves, rewards, tasks
from a2dkit.samplers import BD3LMSampler, MDLMSampler

ALGOS = {"mdlm": (MDLMGRPOTrainer, MDLMSampler), "bd3lm": (BD3LMGRPOTrainer, BD3LMSampler)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", default="mdlm", choices=tuple(ALGOS))
    p.add_argument("--dataset", default="a2dkit/synthetic")
    p.add_argument("--reward", default="exact_match")
    p.add_argument("--max_steps", type=int, default=40)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--num_test", type=int, default=64)
    p.add_argument("--max_completion_length", type=int, default=8, help="also the denoising steps")
    p.add_argument("--block_size", type=int, default=None, help="default: 8 (MDLM), 4 (BD3LM)")
    p.add_argument("--model_dir", default=None, help="SFT checkpoint (default: the scale's)")
    a = p.parse_args()
    cfg = scales.get_scale(os.environ.get("A2DKIT_SCALE", "smoke"))
    if a.model_dir:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        model = AutoModelForMaskedLM.from_pretrained(a.model_dir)
        tok = AutoTokenizer.from_pretrained(a.model_dir)
    else:
        model, tok = scales.load_diffusion_model(cfg, a.algo, sft=True)
    trainer_cls, sampler_cls = ALGOS[a.algo]
    reward = rewards.get_rewards([a.reward])[0]
    train = tasks.load_task(a.dataset, "train", 512, seed=0)
    test = tasks.load_task(a.dataset, "test", a.num_test, seed=0)
    args = DiffuGRPOConfig(
        output_dir=str(cfg.output_dir("bench-grpo")), max_steps=a.max_steps,
        per_device_train_batch_size=16, num_generations=8,
        max_completion_length=a.max_completion_length, steps=a.max_completion_length,
        block_size=a.block_size or (8 if a.algo == "mdlm" else 4), learning_rate=a.learning_rate,
        temperature=1.0, beta=0.0, use_cpu=cfg.use_cpu, save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = trainer_cls(model.train(), [reward], args, train_dataset=train, processing_class=tok)
    config = trainer.sampler_config

    def held_out() -> float:  # the fixed greedy sampler on the held-out split
        result = curves.held_out_reward(model, tok, sampler_cls, test, [reward], config,
                                        temperature=0.0)  # fmt: skip
        model.train()
        return result["rewards"][reward.__name__]

    before = held_out()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    after = held_out()
    print(f"{a.algo} {a.dataset} {a.reward}: held-out reward {before:.3f} -> {after:.3f} "
          f"({len(test)} prompts, {a.max_steps} GRPO steps, {seconds:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
