"""Sample completions from an A2D model with the MDLM or BD3LM sampler (dLLM a2d sample.py).

Run: python -m a2dkit.cli.sample --model_name_or_path models/a2d/Qwen3-0.6B --algo bd3lm \
    --chat_template True --prompts "Write a haiku about rain." --prompts "What is BFS?"
Fast (Fast-dLLM): --algo mdlm --block_size 32 --kv_cache dual --threshold 0.9
Lossless (the source AR model's output): --speculative source --draft_length 8 --json out.json
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; Fast-dLLM arXiv 2505.22618;
speculative decoding arXiv 2211.17192.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from a2dkit import samplers
from a2dkit.cli import speculative, verifier
from a2dkit.cli.errors import run_cli
from a2dkit.convert.load import load_model
from a2dkit.diffusion.schedules import SCHEDULES
from a2dkit.models.conventions import check_attention_implementation
from a2dkit.samplers.prompts import completion, encode

ALGOS = ("mdlm", "bd3lm")
DEFAULT_PROMPT = "ROMEO: But, soft! what light through yonder window breaks?"


@dataclass
class SampleArguments:
    """Flags of ``a2dkit.cli.sample`` and ``a2dkit.cli.chat`` (dLLM names)."""

    model_name_or_path: str = field(
        metadata={"help": "converted A2D checkpoint (or AR: converted)"}
    )
    algo: str = field(default="bd3lm", metadata={"help": f"one of {ALGOS}"})
    chat_template: bool = False
    prompts: list[str] = field(
        default_factory=list,
        metadata={"action": "extend", "help": "repeat the flag or separate prompts with '||'"},
    )
    remasking: str = "low_confidence"
    steps: int = 128
    max_new_tokens: int = 128
    temperature: float = 0.0
    block_size: int = 32
    threshold: float | None = field(default=None, metadata={"help": "e.g. 0.9: parallel decoding"})
    kv_cache: str | None = field(
        default=None,
        metadata={"help": "mdlm: none|prefix|dual; bd3lm: reuse|card (default: exact)"},
    )
    cfg_scale: float = 0.0
    schedule: str | None = field(
        default=None, metadata={"help": "None: even split per block; 'linear': dLLM's counts"}
    )
    seed: int = 42
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = field(default=False, metadata={"help": "run the model's own code"})
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load .bin weights"})
    speculative: str | None = field(default=None, metadata={"help": f"{speculative.MODES}"})
    draft_length: int = field(
        default=8,
        metadata={"help": "tokens per draft (--speculative); one-pass reads (k+1)(k+2) columns "
                  "a forward: 2-4 on a CPU"},
    )  # fmt: skip
    draft_candidates: int = field(
        default=1,
        metadata={"help": "--speculative one-pass, greedy: verify the first drafted token's top-m "
                  "choices as a tree (SpecInfer); a forward reads (k+m)(k+2) columns"},
    )  # fmt: skip
    verifier_path: str | None = field(default=None, metadata={"help": "default: the manifest's"})

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise ValueError(f"algo={self.algo!r} is not valid; choose one of {ALGOS}")
        check_attention_implementation(self.attn_implementation)  # before the model loads
        if self.schedule is not None and self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r} is not valid; None or {tuple(SCHEDULES)}")
        speculative.check_flags(self)


@dataclass
class SampleMainArguments(SampleArguments):
    """``sample``'s flags: the sampling ones, and where to write the results."""

    json: str | None = field(default=None, metadata={"help": "write completions and statistics"})


def load(args: SampleArguments):
    """(model, tokenizer, sampler), the flags checked first; an AR checkpoint is converted in
    memory (with a note). No model code runs and no pickle loads without their flags."""
    sampler_cls = samplers.MDLMSampler if args.algo == "mdlm" else samplers.BD3LMSampler
    sampler_cls.config_class(**sampler_options(args))  # bad sampling flags: before any loading
    dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
    model, tokenizer = load_model(
        args.model_name_or_path, trust_remote_code=args.trust_remote_code,
        allow_pickle_weights=args.allow_pickle_weights, dtype=dtype,
        attn_implementation=args.attn_implementation,
    )  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()
    return model, tokenizer, sampler_cls(model, tokenizer)


def sampler_options(args: SampleArguments) -> dict:
    """The sampler-config fields set by the flags."""
    names = ("remasking", "steps", "max_new_tokens", "temperature", "block_size", "threshold")
    options = {n: getattr(args, n) for n in (*names, "cfg_scale", "schedule")}
    return options | ({"kv_cache": args.kv_cache} if args.kv_cache is not None else {})


def split_prompts(prompts: list[str]) -> list[str]:
    """``--prompts`` split on '||'; no flag -> the default prompt, only empty ones -> an error."""
    split = [p.strip() for raw in prompts for p in raw.split("||") if p.strip()]
    if prompts and not split:
        raise ValueError(f"--prompts {prompts!r} holds no text; pass a prompt or omit --prompts")
    return split or [DEFAULT_PROMPT]


def with_algo(algo: str, main: Callable[[list[str]], int], argv: list[str] | None) -> int:
    """Run ``main`` (sample's or chat's) with ``--algo`` fixed (``a2dkit.cli.<algo>.*``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--algo" in argv:
        raise ValueError(f"--algo is fixed to {algo} by a2dkit.cli.{algo}; got {argv}")
    return main(["--algo", algo, *argv])


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser, set_seed

    (args,) = HfArgumentParser(SampleMainArguments).parse_args_into_dataclasses(argv)
    set_seed(args.seed)
    prompts = split_prompts(args.prompts)
    path = verifier.verifier_path(args) if args.speculative else None  # before any weights
    model, tokenizer, sampler = load(args)
    chats = [[{"role": "user", "content": p}] for p in prompts]
    inputs = [encode(tokenizer, c if args.chat_template else p, args.chat_template)
              for c, p in zip(chats, prompts, strict=True)]  # fmt: skip
    if args.speculative:
        texts, stats = speculative.run(args, path, model, tokenizer, sampler, inputs)
    else:
        out = sampler.sample(inputs, **sampler_options(args))
        texts, stats = [completion(tokenizer, out, r) for r in range(len(inputs))], {"nfe": out.nfe}
        print(f"[a2dkit] {out.nfe} forward passes for {len(inputs)} x {args.max_new_tokens} tokens")
    for row, (prompt, text) in enumerate(zip(prompts, texts, strict=True)):
        print(f"\n[Sample {row}] {prompt}\n{text}")
    if args.json:
        rows = [{"prompt": p, "completion": t} for p, t in zip(prompts, texts, strict=True)]
        Path(args.json).write_text(json.dumps({"samples": rows, "statistics": stats}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
