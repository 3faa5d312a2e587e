"""Check a Tiny-A2D Slurm recipe before it takes GPUs: trainer flags, dataset spec and base model.

Run by slurm/_launch.sh: python slurm/check_recipe.py --algo mdlm --model Qwen/Qwen3-0.6B \
    --converted .models/a2d/Qwen3-0.6B -- <trainer flags>   (exit 0: valid; exit 2: an error)
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ALGOS = ("mdlm", "bd3lm")


def parse_trainer_flags(algo: str, flags: list[str]):
    """Parse ``flags`` with the dataclasses of ``a2dkit.cli.<algo>.sft``: (model, data, train) args.

    bf16 is forced off for the check only: it depends on the GPU, not on the recipe.
    """
    import transformers

    from a2dkit.training import config

    train_config = {"mdlm": config.MDLMConfig, "bd3lm": config.BD3LMConfig}[algo]
    parser = transformers.HfArgumentParser(
        (config.ModelArguments, config.DataArguments, train_config)
    )
    return parser.parse_args_into_dataclasses([*flags, "--bf16", "False", "--fp16", "False"])


def parse_grpo_flags(algo: str, flags: list[str]):
    """Parse ``flags`` as ``a2dkit.cli.<algo>.grpo`` does: (model, data, GRPO) args."""
    from a2dkit.cli import grpo

    return grpo.parse([*flags, "--bf16", "False", "--fp16", "False"])


def _hub_offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def check_datasets(spec: str) -> list[str]:
    """Every dataset of ``--dataset_args`` must be a known loader, a local path or a Hub dataset."""
    from a2dkit import data

    names = [s.name for s in data.parse_dataset_args(spec)]  # ValueError on a malformed spec
    unknown = [n for n in names if n not in data.LOADERS and not os.path.exists(n)]
    if unknown and _hub_offline():
        raise ValueError(
            f"--dataset_args {spec!r}: unknown dataset(s) {unknown} with HF_HUB_OFFLINE set; "
            f"known: {list(data.LOADERS)} (or a local path)"
        )
    missing = [n for n in unknown if _on_hub(n) is False]
    if missing:
        raise ValueError(
            f"--dataset_args {spec!r}: no dataset {missing} on the Hugging Face Hub; "
            f"check the spelling, or use one of {list(data.LOADERS)} or a local path"
        )
    return names


def _on_hub(name: str) -> bool | None:
    """Whether the Hub has dataset ``name``; None (with a warning) when the Hub cannot be asked."""
    from huggingface_hub import HfApi

    try:
        return HfApi().repo_exists(name, repo_type="dataset")
    except Exception as err:  # no network on the node: the trainer will tell
        print(f"[a2dkit/slurm] warning: cannot check dataset {name!r}: {err}", file=sys.stderr)
        return None


def check_model(model: str, converted: str) -> str:
    """The converted dir exists, or ``model`` is an AR model ``a2dkit.convert`` supports."""
    if (Path(converted) / "config.json").is_file():
        return f"converted model found: {converted}"
    from a2dkit import convert

    try:
        verdict = convert.detect(model)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"MODEL={model!r} cannot be read ({err}); give a local AR checkpoint or a Hub id"
        ) from err
    verdict.raise_if_unsupported()
    return f"{model} ({verdict.model_type}) will be converted to {converted}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", required=True, choices=ALGOS)
    parser.add_argument("--model", required=True, help="the AR base model (Hub id or dir)")
    parser.add_argument("--converted", required=True, help="where its A2D conversion lives")
    parser.add_argument("--stage", default="sft", choices=("sft", "grpo"), help="which trainer")
    parser.add_argument("flags", nargs=argparse.REMAINDER, help="-- then the trainer flags")
    args = parser.parse_args(argv)
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    try:
        if args.stage == "grpo":  # --dataset NAME: a2dkit.grpo.tasks checks the name
            _, data_args, train_args = parse_grpo_flags(args.algo, flags)
            names = [data_args.dataset]
        else:
            _, data_args, train_args = parse_trainer_flags(args.algo, flags)
            names = check_datasets(data_args.dataset_args)
        model_note = check_model(args.model, args.converted)
    except (ValueError, TypeError) as err:
        print(f"[a2dkit/slurm] error: {err}", file=sys.stderr)
        return 2
    print(f"[a2dkit/slurm] recipe OK: {args.algo}; datasets {names}; {model_note}", file=sys.stderr)
    print(f"[a2dkit/slurm] output_dir: {train_args.output_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
