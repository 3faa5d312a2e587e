"""Bench: speculative decoding of converted models, lossless, on held-out chat prompts, one run.

For every BD3LM drafter (default: chapter 11's cached runs of ``--recipes``) and every mode:
the source AR model verifying (``source``), the drafter's own weights in causal mode (``self``),
both verifying and drafting in the same forward (``one-pass``); greedy, and sampled at
``--temperature`` (the ``T`` modes). Per row: drafted tokens accepted per verifier forward,
tokens per verifier forward, forwards per token (drafter and verifier together), wall tok/s and
its ratio to the verifier's own greedy ``generate`` (KV cache, one prompt at a time, same
prompts, timed in this run), and for greedy rows the prompts whose output is the verifier's greedy
output token for token (it must be all of them). ``--rounds R`` runs AR ``generate`` and every
mode R times in turn and keeps each row's fastest round (as ``timeit``: a busy spell of a shared
machine only adds time, and alternating puts it on every row alike).

Run: A2DKIT_SCALE=laptop python bench/bench_speculative.py --recipes plain,joint-ar --json spec.json
     python bench/bench_speculative.py --model PATH --modes one-pass --draft_length 1 --rounds 3
     python bench/bench_speculative.py --model PATH[:NAME] --num_prompts 8
References: speculative decoding and sampling, Leviathan et al. 2023 (arXiv 2211.17192); I-DLM
arXiv 2604.11035 (one-pass); BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from a2dkit import tutorial
from a2dkit.data.self_chat import load_self_chat
from a2dkit.eval.compare import chat_inputs
from a2dkit.models import causal_mode
from a2dkit.samplers import BD3LMSampler, SpeculativeStats, proposal_drafter, sampler_drafter
from a2dkit.samplers.one_pass import one_pass_self_decode
from a2dkit.samplers.speculative import CausalVerifier, speculative_decode
from a2dkit.tutorial import retention

MODES = ("source", "source +thr", "self", "one-pass", "source T", "self T", "one-pass T")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default=os.environ.get("A2DKIT_SCALE", "smoke"))
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATH[:NAME]",
        help="a BD3LM drafter (repeat); none: the scale's cached --recipes runs",
    )
    p.add_argument("--recipes", default="plain,joint-ar", help="chapter 11's BD3LM runs")
    p.add_argument("--modes", default=",".join(MODES), help=f"a subset of {MODES}")
    p.add_argument("--num_prompts", type=int, default=8)
    p.add_argument("--max_new_tokens", type=int, help="default: cfg.retention.max_new_tokens")
    p.add_argument("--draft_length", type=int, default=8)
    p.add_argument("--draft_steps", type=int, help="sampler forwards per draft (default: k)")
    p.add_argument("--candidates", type=int, default=1,
                   help="one-pass greedy: the first drafted token's top-m choices as a tree")
    p.add_argument("--threshold", type=float, default=0.5, help="the '+thr' rows' drafter")
    p.add_argument("--temperature", type=float, default=0.7, help="the 'T' rows'")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat AR generate and every mode, each row its fastest round (timeit)")
    p.add_argument("--json", help="write the rows here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds {args.rounds} must be >= 1")
    bad = set(args.modes.split(",")) - set(MODES)
    if bad:
        p.error(f"--modes {sorted(bad)} not valid; choose from {MODES}")
    return args


def _drafters(args, cfg):
    """(name, BD3LM model, tokenizer) of every drafter."""
    from a2dkit.convert.load import load_model

    for spec in args.model:
        path, _, name = spec.partition(":")
        model, tok = load_model(path)
        yield name or path, model.eval(), tok
    if not args.model:
        for recipe in args.recipes.split(","):
            model, tok = retention.train_recipe(cfg, "bd3lm", recipe)
            yield f"bd3lm {recipe}", model.eval(), tok


@torch.inference_mode()
def greedy_reference(model, inputs, n: int, eos: int) -> tuple[list[list[int]], float]:
    """Each prompt's greedy ``generate`` ids (up to EOS, included) one at a time, and tok/s."""
    gens, tokens, start = [], 0, time.perf_counter()
    for ids in inputs:
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos)  # fmt: skip
        gens.append(out[0, len(ids) :].tolist())
        tokens += len(gens[-1])
    return gens, tokens / (time.perf_counter() - start)


def run_mode(mode: str, source, model, tok, inputs, args, n: int) -> tuple[list, SpeculativeStats]:
    """One mode's outputs (one prompt at a time) and statistics."""
    stats, eos, k = SpeculativeStats(), tok.eos_token_id, args.draft_length
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    t = args.temperature if mode.endswith(" T") else 0.0
    if mode.startswith("one-pass"):
        m = args.candidates if t == 0 else 1  # a tree is verified greedily
        return [one_pass_self_decode(model, ids, n, k, tok.mask_token_id, candidates=m,
                                     eos_token_id=eos, temperature=t, generator=generator,
                                     stats=stats) for ids in inputs], stats  # fmt: skip
    sampler = BD3LMSampler(model, tok)
    if t > 0:
        drafter = proposal_drafter(sampler, t, stats, steps=args.draft_steps)
    else:
        threshold = args.threshold if "thr" in mode else None
        drafter = sampler_drafter(sampler, stats, threshold=threshold, steps=args.draft_steps)
    verifier = source if mode.startswith("source") else CausalVerifier(model)
    gens = [speculative_decode(verifier, drafter, ids, n, k, temperature=t, eos_token_id=eos,
                               stats=stats, generator=generator) for ids in inputs]  # fmt: skip
    return gens, stats


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = tutorial.get_scale(args.scale)
    n = args.max_new_tokens or cfg.retention.max_new_tokens
    held_out = load_self_chat(retention.self_chat_data(cfg))["test"]
    prompts = held_out.select(range(min(args.num_prompts, len(held_out))))["prompt"]
    source, tok, _ = tutorial.load_source_model(cfg)
    inputs, eos = chat_inputs(tok, prompts), tok.eos_token_id
    modes, drafters = args.modes.split(","), list(_drafters(args, cfg))
    best: dict[tuple[str, str], dict] = {}  # (drafter, mode): its fastest round's row
    print(f"{'drafter':<16} {'mode':<12} {'acc/vfwd':>8} {'tok/vfwd':>8} {'fwd/tok':>8} "
          f"{'tok/s':>7} identical", flush=True)  # fmt: skip
    for _ in range(args.rounds):  # every row once per round: a slow spell hits them alike
        ar_gens, ar_tps = greedy_reference(source, inputs, n, eos)
        _keep(best, dict(drafter="-", mode="ar generate", tok_per_s=ar_tps))
        for name, model, mtok in drafters:
            self_gens = None
            if any(m.startswith(("self", "one-pass")) for m in modes):
                with causal_mode(model):
                    self_gens, self_tps = greedy_reference(model, inputs, n, eos)
                _keep(best, dict(drafter=name, mode="as AR", tok_per_s=self_tps))
            for mode in modes:
                gens, stats = run_mode(mode, source, model, mtok, inputs, args, n)
                reference = ar_gens if mode.startswith("source") else self_gens
                same = None if mode.endswith(" T") else sum(
                    a == b for a, b in zip(gens, reference, strict=True))  # fmt: skip
                _keep(best, dict(drafter=name, mode=mode, **stats.as_dict(), identical=same,
                                 prompts=len(inputs)))  # fmt: skip
                _write(args, cfg, _rows(best))  # a long run keeps what it has measured
    rows = _rows(best)
    print(f"\n{'drafter':<16} {'mode':<12} {'acc/vfwd':>8} {'tok/vfwd':>8} {'fwd/tok':>8} "
          f"{'tok/s':>7} {'x AR':>6} identical", flush=True)  # fmt: skip
    for row in rows:
        _print(row)
    _write(args, cfg, rows)
    print(f"\n[bench_speculative] scale={cfg.name}, {len(inputs)} prompts, max_new_tokens={n}, "
          f"draft_length={args.draft_length}, candidates={args.candidates}, "
          f"rounds={args.rounds} (each row its fastest), torch threads {torch.get_num_threads()}, "
          f"{_machine()}")  # fmt: skip
    return rows


def _keep(best: dict, row: dict) -> None:
    """Print a round's row; keep it if it is the row's fastest round so far."""
    _print(row)
    key = (row["drafter"], row["mode"])
    if key not in best or _tps(row) > _tps(best[key]):
        best[key] = row


def _rows(best: dict) -> list[dict]:
    """The kept rows, each with its ratio to the kept AR ``generate`` row (the first)."""
    rows = list(best.values())
    for row in rows:
        row["x_ar"] = _tps(row) / _tps(rows[0])
    return rows


def _tps(row: dict) -> float:
    """A row's tok/s: plain ``generate`` rows carry ``tok_per_s``, the others their stats'."""
    return row["tok_per_s"] if "tok_per_s" in row else row["tokens_per_second"]


def _print(row: dict) -> None:
    if "tokens" in row:
        stats = (f"{row['accepted_per_verifier_forward']:>8.2f} "
                 f"{row['tokens_per_verifier_forward']:>8.2f} {row['forwards_per_token']:>8.2f}")
    else:  # plain greedy decoding: one forward per token
        stats = f"{'':>8} {'':>8} {1.0:>8.2f}"
    x_ar = f" {row['x_ar']:>6.2f}" if "x_ar" in row else ""
    same = "" if "tokens" not in row else (
        "-" if row["identical"] is None else f"{row['identical']}/{row['prompts']}")
    print(f"{row['drafter']:<16} {row['mode']:<12} {stats} {_tps(row):>7.1f}{x_ar} {same}",
          flush=True)  # fmt: skip


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _write(args, cfg, rows) -> None:
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scale": cfg.name, "machine": _machine(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
