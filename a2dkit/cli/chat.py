"""Multi-turn chat with an A2D model; the denoising of every reply is replayed live with ``rich``.

Run: python -m a2dkit.cli.chat --model_name_or_path models/a2d/Qwen3-0.6B --algo bd3lm \
    --chat_template True   (fast: --algo mdlm --kv_cache dual --threshold 0.9)
Type a message and press Enter; "exit" or end of input (Ctrl-D) quits.
Lossless: --speculative source (the source AR model verifies the drafts; no replay then).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (dLLM a2d chat.py).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from a2dkit.cli import speculative, verifier
from a2dkit.cli.errors import run_cli
from a2dkit.cli.sample import SampleArguments, load, sampler_options
from a2dkit.samplers.prompts import completion, encode

MASK_GLYPH = "░"


@dataclass
class ChatArguments(SampleArguments):
    """The sampling flags plus how the denoising is shown."""

    visualize: bool = field(default=True, metadata={"help": "replay every denoising step"})
    frame_delay: float = field(default=0.02, metadata={"help": "seconds between frames"})


def render(tokenizer, canvas, start: int, mask_id: int):
    """A ``rich`` Text of one generated row: committed tokens, masks as a shaded glyph."""
    from rich.text import Text

    text = Text()
    for token in canvas[start:].tolist():
        if token == tokenizer.eos_token_id:
            break
        if token == mask_id:
            text.append(MASK_GLYPH, style="dim")
        else:
            text.append(tokenizer.decode([token]), style="bold cyan")
    return text


def replay(console, tokenizer, out, args: ChatArguments) -> None:
    """Re-render the canvas after each denoising step (row 0) in a live terminal region."""
    from rich.live import Live

    if not args.visualize or out is None or not out.history:
        return
    with Live(console=console, refresh_per_second=60, transient=True) as live:
        for canvas in out.history:
            live.update(render(tokenizer, canvas[0], out.gen_start, tokenizer.mask_token_id))
            time.sleep(args.frame_delay)


def reply(sampler, tokenizer, history: list[dict], args: ChatArguments, complete=None):
    """Sample the assistant's next message for the conversation so far (``complete``: the
    speculative decoder, which has no denoising to replay)."""
    if args.chat_template:
        ids = encode(tokenizer, history, True)
    else:  # no template: the running transcript is the prompt
        ids = encode(tokenizer, "\n".join(m["content"] for m in history) + "\n", False)
    if complete is not None:
        return None, complete([ids])[0].strip()
    out = sampler.sample([ids], **sampler_options(args))
    return out, completion(tokenizer, out, 0).strip()


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.markup import escape
    from transformers import HfArgumentParser, set_seed

    (args,) = HfArgumentParser(ChatArguments).parse_args_into_dataclasses(argv)
    set_seed(args.seed)
    path = verifier.verifier_path(args) if args.speculative else None  # before any weights
    model, tokenizer, sampler = load(args)
    complete, stats = None, None
    if args.speculative:
        complete, stats = speculative.completer(args, path, model, tokenizer, sampler)
    console, history = Console(), []
    console.print(f"[bold]a2dkit chat[/bold] ({args.algo}); 'exit' or Ctrl-D quits")
    while True:
        console.print("[bold green]user>[/bold green] ", end="")
        line = sys.stdin.readline()
        if not line or line.strip() == "exit":
            break
        history.append({"role": "user", "content": line.strip()})
        out, text = reply(sampler, tokenizer, history, args, complete)
        replay(console, tokenizer, out, args)
        console.print(f"[bold cyan]assistant>[/bold cyan] {escape(text)}")
        if stats is not None:
            console.print(escape(speculative.summary(stats)), style="dim")
        history.append({"role": "assistant", "content": text})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
