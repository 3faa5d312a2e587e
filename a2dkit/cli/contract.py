"""``python -m a2dkit.contract``: run the attention contract on your own converted model.

Run: python -m a2dkit.contract --model_name_or_path models/a2d/Qwen3-0.6B
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2 staircase mask).
"""

from __future__ import annotations

import argparse

from a2dkit._env import torch_dtype
from a2dkit.cli.errors import run_cli
from a2dkit.contract.checks import run_contract
from a2dkit.contract.result import CONTRACT_DTYPES, format_result
from a2dkit.convert.load import load_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the A2D attention contract on a model.")
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--attn_implementation", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument(
        "--dtype", default="float64", choices=list(CONTRACT_DTYPES),
        help="dtype of the checks: float64 decides, float32/bf16 indicate",
    )  # fmt: skip
    parser.add_argument("--bd3lm", default="True", choices=["True", "False"])
    for flag in ("--trust_remote_code", "--allow_pickle_weights"):  # off unless asked for
        parser.add_argument(flag, default="False", choices=["True", "False"])
    args = parser.parse_args(argv)
    model, _ = load_model(
        args.model_name_or_path, require_a2d=True, dtype=torch_dtype(args.dtype),
        attn_implementation=args.attn_implementation,
        trust_remote_code=args.trust_remote_code == "True",
        allow_pickle_weights=args.allow_pickle_weights == "True",
    )  # fmt: skip
    results = run_contract(model, bd3lm=args.bd3lm == "True", dtype=None)
    print(f"attention contract: {args.model_name_or_path} ({args.attn_implementation}, "
          f"{args.dtype})")  # fmt: skip
    for number, result in enumerate(results, start=1):
        print(format_result(number, result))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
