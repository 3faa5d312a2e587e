"""Bench: MDLM continual pretraining from the AR source vs the same architecture from random init.

Both runs train on the same packed tiny-shakespeare rows with the same batches and masking noise
(``a2dkit.tutorial.curves.compare_inits``). The target loss is the best smoothed loss random init
reaches; the ratio is (random-init steps to reach it) / (AR-init steps to reach it).

Run: OMP_NUM_THREADS=1 A2DKIT_SCALE=smoke python bench/bench_ar_init.py [--max_steps 300]
     (smoke: the tiny AR Qwen3, CPU, well under a minute of training; ratios from one run)
References: MDLM arXiv 2406.07524; DiffuLLaMA arXiv 2410.17891.
"""

from __future__ import annotations

import argparse
import os
import time

from a2dkit import tutorial
from a2dkit.tutorial import curves


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default=os.environ.get("A2DKIT_SCALE", "smoke"))
    parser.add_argument("--max_steps", type=int, default=300, help="optimizer steps per run")
    parser.add_argument("--window", type=int, default=20, help="moving-average window (steps)")
    parser.add_argument("--output_dir", default=None)
    args = parser.parse_args(argv)
    cfg = tutorial.get_scale(args.scale)
    start = time.perf_counter()
    logs = curves.compare_inits(cfg, args.output_dir, max_steps=args.max_steps)
    seconds = time.perf_counter() - start
    smooth = {name: curves.moving_average(log, args.window) for name, log in logs.items()}
    target = min(smooth["random_init"])  # the best random init does in max_steps
    steps = {name: curves.steps_to_loss(log, target, args.window) for name, log in logs.items()}
    ratio = steps["random_init"] / steps["ar_init"] if steps["ar_init"] else float("nan")
    print(f"scale={cfg.name} max_steps={args.max_steps} window={args.window} ({seconds:.0f} s)")
    for name in curves.INITS:
        first, last = smooth[name][args.window - 1], smooth[name][-1]
        print(f"  {name:12s} smoothed loss {first:.3f} (step {args.window}) -> {last:.3f}")
    print(f"target loss {target:.3f} (best smoothed random-init loss)")
    print(f"  steps to reach it: ar_init={steps['ar_init']} random_init={steps['random_init']}")
    print(f"  ratio random_init / ar_init = {ratio:.1f}x")
    return {"target": target, "ratio": ratio, **{f"steps_{k}": v or 0 for k, v in steps.items()}}


if __name__ == "__main__":
    main()
