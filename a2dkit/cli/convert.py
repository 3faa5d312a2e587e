"""``python -m a2dkit.convert``: detect, or convert a checkpoint on disk (dLLM's flags).

Run: python -m a2dkit.convert --model_name_or_path Qwen/Qwen3-0.6B --output_dir models/a2d/Qwen3
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D convert.py (same flags).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from a2dkit.cli.errors import run_cli
from a2dkit.convert import sources
from a2dkit.convert.core import detect
from a2dkit.convert.on_disk import convert
from a2dkit.models.conventions import MASK_TOKEN


@dataclass
class ConvertArguments:
    """Flags of ``python -m a2dkit.convert`` (dLLM's names where they exist)."""

    model_name_or_path: str = field(metadata={"help": "AR source: local dir or Hub id"})
    output_dir: str | None = field(default=None, metadata={"help": "where to save the A2D model"})
    overwrite: bool = False
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    attn_implementation: str = "sdpa"
    mask_token: str = MASK_TOKEN
    gguf_file: str | None = field(
        default=None, metadata={"help": "GGUF file inside model_name_or_path (dequantised)"}
    )
    dtype: str = field(
        default="auto", metadata={"help": "auto (checkpoint's; float32 for GGUF), float32, ..."}
    )
    detect_only: bool = field(default=False, metadata={"help": "print the verdict and exit"})


def main(argv: list[str] | None = None) -> int:
    (args,) = HfArgumentParser(ConvertArguments).parse_args_into_dataclasses(argv)
    if args.gguf_file is not None:
        verdict = sources.plan_source(args.model_name_or_path, args.gguf_file).verdict
    else:
        verdict = detect(args.model_name_or_path, args.trust_remote_code)
    print(verdict)
    if args.detect_only:
        return 0 if verdict.supported else 1
    if args.output_dir is None:
        raise ValueError("--output_dir is required unless --detect_only True")
    out = convert(
        args.model_name_or_path,
        args.output_dir,
        overwrite=args.overwrite,
        trust_remote_code=args.trust_remote_code,
        allow_pickle_weights=args.allow_pickle_weights,
        attn_implementation=args.attn_implementation,
        mask_token=args.mask_token,
        gguf_file=args.gguf_file,
        dtype=args.dtype,
    )
    print(f"converted -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
