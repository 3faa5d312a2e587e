"""Bench: the retention table. One run measures converted models against their AR source on the
same held-out prompts: chrF and exact match of the greedy answers against the source's, the
likelihood gap (source NLL vs the A2D ELBO bound, nats/token) on the source's held-out answers
and on held-out plain text (tiny-shakespeare's test split),
HumanEval pass@1 (offline, sandboxed), forward passes per token and tok/s, training seconds.

Run: A2DKIT_SCALE=laptop python bench/bench_retention.py --json retention.json
         (no model arguments: the scale's recipe table, ``cfg.retention.recipes`` for MDLM and
          BD3LM, from the cached runs; the missing ones are trained first, same budget each)
     python bench/bench_retention.py --model bd3lm=PATH --model mdlm=PATH2 --prompts my.jsonl
         (your checkpoints against the scale's source; --prompts: one {"prompt": ...} per line)
References: chrF, Popović 2015; MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; HumanEval,
Chen et al. 2021 (arXiv 2107.03374).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import torch

from a2dkit import tutorial
from a2dkit.data.prompt_sets import load_prompts_file
from a2dkit.data.self_chat import load_self_chat
from a2dkit.data.shakespeare import tiny_shakespeare_text
from a2dkit.eval.compare import (
    answer_nll_gap,
    chat_inputs,
    decode,
    retention_row,
    speculate,
    text_nll_gap,
)
from a2dkit.eval.humaneval import load_problems
from a2dkit.tutorial import retention


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default=os.environ.get("A2DKIT_SCALE", "smoke"))
    p.add_argument("--model", action="append", default=[], metavar="ALGO=PATH[:NAME]",
                   help="an A2D checkpoint (repeat); none: the scale's recipe table")  # fmt: skip
    p.add_argument("--algos", default="mdlm,bd3lm", help="the recipe table's algorithms")
    p.add_argument("--recipes", help="comma-separated subset of cfg.retention.recipes")
    p.add_argument("--prompts", help='JSONL, one {"prompt": ...} per line (default: held out)')
    p.add_argument("--num_prompts", type=int, help="default: cfg.retention.num_prompts")
    p.add_argument("--humaneval_limit", type=int, help="default: cfg.retention.humaneval_limit")
    p.add_argument("--draft_length", type=int, default=0,
                   help="> 0: a speculative row per A2D model (the source verifies)")  # fmt: skip
    p.add_argument("--threshold", type=float, help="the drafter's confidence threshold")
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    args = p.parse_args(argv)
    if args.prompts:
        try:
            args.prompt_list = load_prompts_file(args.prompts)  # before any model loads
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    for spec in args.model:
        algo, sep, _ = spec.partition("=")
        if not sep or algo not in ("mdlm", "bd3lm"):
            p.error(f"--model {spec!r} must be ALGO=PATH with ALGO mdlm or bd3lm")
    return args


def _models(args, cfg):
    """(name, algo, recipe, model, tokenizer, train_seconds) of every row after the source."""
    from a2dkit.convert.load import load_model

    for spec in args.model:
        algo, _, rest = spec.partition("=")
        path, _, name = rest.partition(":")
        model, tok = load_model(path)
        yield name or path, algo, "given", model.eval(), tok, None
    if args.model:
        return
    recipes = args.recipes.split(",") if args.recipes else cfg.retention.recipes
    for algo, recipe in retention.table_rows(args.algos.split(","), recipes):
        model, tok = retention.train_recipe(cfg, algo, recipe)
        seconds = retention.train_seconds(cfg, algo, recipe)
        yield f"{algo} {recipe}", algo, recipe, model, tok, seconds


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = tutorial.get_scale(args.scale)
    r = cfg.retention
    n = args.num_prompts or r.num_prompts
    if args.prompts:
        prompts, answers = args.prompt_list[:n], None
    else:
        held_out = load_self_chat(retention.self_chat_data(cfg))["test"].select(range(n))
        prompts = held_out["prompt"]
    text = tiny_shakespeare_text("test")  # held-out plain text: neither model trained on it
    texts = [text[i * 400 : (i + 1) * 400] for i in range(max(n // 4, 2))]
    source, tok, _ = tutorial.load_source_model(cfg)
    limit = args.humaneval_limit if args.humaneval_limit is not None else r.humaneval_limit
    problems = load_problems(limit) if limit else []
    code_inputs = [tok(p.prompt)["input_ids"] for p in problems]
    kw = dict(max_new_tokens=r.max_new_tokens, block_size=r.block_size)
    reference = decode(source, tok, chat_inputs(tok, prompts), algo="ar", **kw)
    answers = reference.texts  # the source's own greedy answers: what every row is compared with
    code = decode(source, tok, code_inputs, algo="ar", **kw) if problems else None
    rows = [retention_row("source", "ar", "source", reference, answers, nll=None,
                          problems=problems, code=code)]  # fmt: skip
    rows[0].nll_gap = rows[0].nll_gap_text = 0.0
    print(_header(), flush=True)
    print(_line(rows[0]), flush=True)
    for name, algo, recipe, model, mtok, seconds in _models(args, cfg):
        block = (model.config.to_dict().get("a2d_recipe") or {}).get("block_size") or r.block_size
        out = decode(model, mtok, chat_inputs(mtok, prompts), algo=algo,
                     max_new_tokens=r.max_new_tokens, block_size=block)  # fmt: skip
        nll = answer_nll_gap(source, model, mtok, prompts, answers, algo=algo, block_size=block,
                             mc_num=r.elbo_samples)  # fmt: skip
        nll_text = text_nll_gap(source, model, mtok, texts, algo=algo, block_size=block,
                                mc_num=r.elbo_samples)  # fmt: skip
        code = None
        if problems:
            code = decode(model, mtok, [mtok(p.prompt)["input_ids"] for p in problems],
                          algo=algo, max_new_tokens=r.max_new_tokens, block_size=block)  # fmt: skip
        row = retention_row(name, algo, recipe, out, answers, nll=nll, nll_text=nll_text,
                            problems=problems, code=code, train_seconds=seconds)  # fmt: skip
        rows.append(row)
        print(_line(row), flush=True)
        if args.draft_length > 0:
            rows.append(_speculative_row(args, source, model, mtok, prompts, answers, row, algo))
            print(_line(rows[-1]), flush=True)
        _write(args, cfg, rows)  # after every row: a long run keeps what it measured
    _write(args, cfg, rows)
    print(f"\n[bench_retention] scale={cfg.name}, {len(prompts)} prompts, HumanEval "
          f"{len(problems)}, torch threads {torch.get_num_threads()}, {_machine()}")  # fmt: skip
    dicts = [row.as_dict() for row in rows]
    return dicts


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _write(args, cfg, rows) -> None:
    if args.json:
        with open(args.json, "w") as f:
            rows = [row.as_dict() for row in rows]
            json.dump({"scale": cfg.name, "machine": _machine(), "rows": rows}, f, indent=2)


def _speculative_row(args, source, model, tok, prompts, answers, row, algo):
    """The A2D model drafting, the source verifying: lossless, so chrF is the source's own."""
    r = tutorial.get_scale(args.scale).retention
    spec = speculate(source, model, tok, chat_inputs(tok, prompts), algo=algo,
                     draft_length=args.draft_length, max_new_tokens=r.max_new_tokens,
                     threshold=args.threshold)  # fmt: skip
    out = retention_row(f"{row.name} +spec", algo, row.recipe, spec.decoding, answers)
    out.accepted_per_forward = spec.stats.accepted_per_verifier_forward
    out.identical = spec.identical / len(prompts)
    ar, tps = spec.verifier.tok_per_s, spec.decoding.tok_per_s
    print(f"    spec: {spec.stats.accepted_per_verifier_forward:.2f} accepted / verifier forward, "
          f"{spec.stats.tokens_per_verifier_forward:.2f} tokens / verifier forward, "
          f"{spec.stats.forwards_per_token:.2f} forwards / token, identical {spec.identical}/"
          f"{len(prompts)} to the source's unbatched greedy generate, "
          f"{tps:.1f} tok/s vs its {ar:.1f} ({tps / ar:.2f}x)",
          flush=True)  # fmt: skip
    return out


def _header() -> str:
    return (f"{'name':<22} {'chrF':>6} {'exact':>6} {'NLL gap':>8} {'gap txt':>8} {'HumanEval':>9} "
            f"{'fwd/tok':>8} {'tok/s':>7} {'train s':>8}")  # fmt: skip


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _line(row) -> str:
    return (f"{row.name:<22} {row.chrf:>6.3f} {row.exact_match:>6.3f} "
            f"{_fmt(row.nll_gap, '>8.3f')} {_fmt(row.nll_gap_text, '>8.3f')} "
            f"{_fmt(row.humaneval_pass1, '>9.3f')} "
            f"{row.forwards_per_token:>8.2f} {row.tok_per_s:>7.1f} "
            f"{_fmt(row.train_seconds, '>8.0f')}")  # fmt: skip


if __name__ == "__main__":
    main()
