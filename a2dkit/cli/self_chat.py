"""``python -m a2dkit.cli.self_chat``: build (or reuse) the self-distilled chat set, a source AR
model's own greedy answers to the kit's everyday prompts, then print its directory.

Run: python -m a2dkit.cli.self_chat   (the laptop source, SmolLM2-135M-Instruct, offline)
Read it with ``--dataset_args a2dkit/self-chat[train:800]`` (``a2dkit.data.self_chat``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from a2dkit._env import MODEL_DTYPES, check_choice, torch_dtype
from a2dkit.cli.errors import run_cli
from a2dkit.data.prompt_sets import everyday_prompts
from a2dkit.data.self_chat import (
    INFO,
    LAPTOP_SOURCE,
    SelfChatSettings,
    build_self_chat,
    source_name,
)
from a2dkit.tutorial.scale_config import OFFLINE_SOURCES


@dataclass
class SelfChatArguments:
    """Flags of ``python -m a2dkit.cli.self_chat``."""

    model_name_or_path: str = field(
        default=LAPTOP_SOURCE, metadata={"help": "the source AR chat model: Hub id or local dir"}
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "default: <a2dkit cache>/self-chat/<key>"}
    )
    num_train: int = 2200
    num_test: int = 200
    seed: int = 0
    max_new_tokens: int = 64
    batch_size: int = 32
    dtype: str = field(default="float32", metadata={"help": "float32, bfloat16 or float16"})
    device: str = field(default="auto", metadata={"help": "auto (cuda if there), cpu, cuda"})
    num_threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's)"})


def _check(args: SelfChatArguments) -> None:
    check_choice("dtype", args.dtype, MODEL_DTYPES[1:])
    for name in ("num_train", "max_new_tokens", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} {getattr(args, name)} must be >= 1")
    for name in ("num_test", "seed", "num_threads"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} {getattr(args, name)} must be >= 0")
    everyday_prompts(args.num_train, args.num_test, args.seed)  # are there that many prompts?


def main(argv: list[str] | None = None) -> int:
    """Parse :class:`SelfChatArguments`, build the set, print its directory and summary."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (args,) = HfArgumentParser(SelfChatArguments).parse_args_into_dataclasses(args=argv)
    _check(args)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = (
        args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    )
    name = args.model_name_or_path
    path = OFFLINE_SOURCES[name]() if name in OFFLINE_SOURCES else name
    settings = SelfChatSettings(
        source_name(name), args.num_train, args.num_test, args.seed, args.max_new_tokens, args.dtype
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise ValueError(f"{name!r} has no chat template; self-chat needs a chat model")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(args.dtype))
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        print(f"[a2dkit] self-chat: {done}/{total} prompts, {elapsed:.0f} s", flush=True)

    out = build_self_chat(
        model.to(device).eval(),
        tokenizer,
        settings,
        output_dir=args.output_dir,
        batch_size=args.batch_size,
        on_batch=progress,
    )
    info = json.loads((out / INFO).read_text())
    print(json.dumps({k: info[k] for k in ("rows", "truncated", "generation")}, indent=2))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
