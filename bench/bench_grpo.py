"""Bench: held-out reward before and after diffu-GRPO, with one fixed greedy sampler, in one run.

The SFT'd model of a scale (chapter 7's, cached; or, with ``--sft_dataset_args``, the scale's
source fine-tuned on that data first, e.g. the kit's puzzles in d1's answer format) is
GRPO-trained on the train split of a kit task; the mean reward of greedy samples on the disjoint
test split is measured before and after, and the training reward's first and last quarter.
Run: A2DKIT_SCALE=smoke python bench/bench_grpo.py --algo mdlm --dataset a2dkit/synthetic \
    --reward exact_match --max_steps 40
Real model (laptop): A2DKIT_SCALE=laptop python bench/bench_grpo.py --dataset sudoku \
    --reward sudoku,xml_count --sft_dataset_args "a2dkit/sudoku[train:800,test:32]" \
    --sft_steps 120 --sft_max_length 176 --max_completion_length 56 --threshold 0.9 --kv_cache dual
References: d1 arXiv 2504.12216 (diffu-GRPO; SFT then RL, §3.3); GRPO arXiv 2402.03300.
"""

from __future__ import annotations

import argparse
import os
import re
import time

from a2dkit import tutorial
from a2dkit.grpo import BD3LMGRPOTrainer, DiffuGRPOConfig, MDLMGRPOTrainer, curves, rewards, tasks
from a2dkit.samplers import BD3LMSampler, MDLMSampler

ALGOS = {"mdlm": (MDLMGRPOTrainer, MDLMSampler), "bd3lm": (BD3LMGRPOTrainer, BD3LMSampler)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", default="mdlm", choices=tuple(ALGOS))
    p.add_argument("--dataset", default="a2dkit/synthetic")
    p.add_argument("--reward", default="exact_match", help="comma-separated: trained on the sum")
    p.add_argument("--max_steps", type=int, default=40)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--num_test", type=int, default=64)
    p.add_argument("--max_completion_length", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: length)")
    p.add_argument("--block_size", type=int, default=None, help="default: 8 (MDLM), 4 (BD3LM)")
    p.add_argument("--threshold", type=float, default=None, help="parallel decoding, in (0, 1]")
    p.add_argument("--kv_cache", default="none", help="MDLM: Fast-dLLM none|prefix|dual")
    p.add_argument("--batch_size", type=int, default=16, help="completions per step")
    p.add_argument("--num_generations", type=int, default=8, help="completions per prompt")
    p.add_argument("--model_dir", default=None, help="SFT checkpoint (default: the scale's)")
    p.add_argument("--sft_dataset_args", default=None, help="SFT the source on this first")
    p.add_argument("--sft_steps", type=int, default=None, help="with --sft_dataset_args")
    p.add_argument("--sft_max_length", type=int, default=None, help="with --sft_dataset_args")
    return p


def start_model(cfg, a: argparse.Namespace):
    """The model GRPO starts from: ``--model_dir``, a cached SFT on ``--sft_dataset_args``, or
    the scale's chapter-7 SFT."""
    if a.model_dir:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        model = AutoModelForMaskedLM.from_pretrained(a.model_dir)
        return model, AutoTokenizer.from_pretrained(a.model_dir)
    if a.sft_dataset_args:
        sft = {"dataset_args": a.sft_dataset_args}
        sft |= {"steps": a.sft_steps} if a.sft_steps else {}
        sft |= {"max_length": a.sft_max_length} if a.sft_max_length else {}
        tag = re.sub(r"[^A-Za-z0-9]+", "-", a.sft_dataset_args).strip("-")
        return tutorial.load_diffusion_model(cfg.replace(sft=sft), a.algo, sft=True, tag=tag)
    return tutorial.load_diffusion_model(cfg, a.algo, sft=True)


def main() -> int:
    a = _parser().parse_args()
    cfg = tutorial.get_scale(os.environ.get("A2DKIT_SCALE", "smoke"))
    reward_funcs = rewards.get_rewards(a.reward.split(","))  # unknown names fail before loading
    train = tasks.load_task(a.dataset, "train", 512, seed=0)
    test = tasks.load_task(a.dataset, "test", a.num_test, seed=0)
    model, tok = start_model(cfg, a)
    trainer_cls, sampler_cls = ALGOS[a.algo]
    args = DiffuGRPOConfig(
        output_dir=str(cfg.output_dir("bench-grpo")), max_steps=a.max_steps,
        per_device_train_batch_size=a.batch_size, num_generations=a.num_generations,
        max_completion_length=a.max_completion_length, steps=a.steps or a.max_completion_length,
        block_size=a.block_size or (8 if a.algo == "mdlm" else 4), threshold=a.threshold,
        kv_cache=a.kv_cache,
        learning_rate=a.learning_rate, lr_scheduler_type="constant", temperature=1.0, beta=0.0,
        use_cpu=cfg.hardware.use_cpu, bf16=False, save_strategy="no", disable_tqdm=True,
        logging_steps=1, report_to="none", seed=0,
    )  # fmt: skip
    trainer = trainer_cls(model.train(), reward_funcs, args, train_dataset=train,
                          processing_class=tok)  # fmt: skip
    config = trainer.sampler_config

    def held_out() -> dict[str, float]:  # the fixed greedy sampler on the held-out split
        result = curves.held_out_reward(model, tok, sampler_cls, test, reward_funcs, config,
                                        temperature=0.0)  # fmt: skip
        model.train()
        return result["rewards"]

    def show(means: dict[str, float]) -> str:
        parts = [f"{name} {value:.3f}" for name, value in means.items()]
        return ", ".join(parts) + (f" (sum {sum(means.values()):.3f})" if len(means) > 1 else "")

    before = held_out()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    after = held_out()
    logged = curves.logged(trainer.state.log_history)
    print(f"{a.algo} {a.dataset}: held-out before: {show(before)}")
    print(f"{a.algo} {a.dataset}: held-out after:  {show(after)}")
    if len(logged) >= 4:
        first, last = curves.quarter_means(logged)
        print(f"{a.algo} {a.dataset}: training reward, first -> last quarter of {len(logged)} "
              f"steps: {first:.3f} -> {last:.3f}")  # fmt: skip
    print(f"{a.algo} {a.dataset} {a.reward}: held-out reward {sum(before.values()):.3f} -> "
          f"{sum(after.values()):.3f} ({len(test)} prompts, {a.max_steps} GRPO steps, "
          f"{seconds:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
