"""Bench: one run, same held-out prompts, same max_new_tokens: the source AR model's own greedy
``generate`` (KV cache) beside MDLM (kv_cache none / prefix / dual) and BD3LM (reuse / card), each
with fixed steps and with threshold decoding, and speculative decoding (BD3LM drafts of
--draft_length, fixed steps or threshold, verified greedily by the source AR model, "spec source",
or by the BD3LM model itself in causal mode, "spec self", or verifying and drafting in the same
forward, "spec one-pass"; the self rows beside its own AR-mode generate). Per
row: tokens/s (CPU time and wall), forward passes per token, exact match, agreement with exact
MDLM, and ratios to the AR and exact MDLM rows; per speculative row: accepted drafts per verifier
forward and identity with its verifier's greedy generate. Speculative rows decode one prompt at a
time: compare their tok/s with the AR row at --batch_size 1.

Run: A2DKIT_SCALE=smoke python bench/bench_decoding.py   (trains the smoke SFT models once, cached)
     python bench/bench_decoding.py --ar_model AR --mdlm_model A2D --bd3lm_model A2D
         (checkpoint paths; an AR checkpoint given as A2D is converted in memory, untrained)
References: Fast-dLLM arXiv 2505.22618; MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from a2dkit import data, tutorial
from a2dkit.eval import exact_match
from a2dkit.models import causal_mode
from a2dkit.samplers import BD3LMSampler, CausalVerifier, MDLMSampler, SpeculativeStats
from a2dkit.samplers.drafters import sampler_drafter
from a2dkit.samplers.one_pass import one_pass_self_decode
from a2dkit.samplers.speculative import speculative_greedy

THRESHOLD = 0.9  # Fast-dLLM's default
# (name, sampler, kv_cache, threshold?) of every diffusion row, after the AR row
ROWS = [(f"{algo} {kv}{' +thr' if thr else ''}", algo, kv, thr)
        for algo, modes in (("mdlm", ("none", "prefix", "dual")), ("bd3lm", ("reuse", "card")))
        for kv in modes for thr in (False, True)]  # fmt: skip
SPEC_ROWS = [("bd3lm as AR", "causal", None, False)] + [
    (f"spec {mode}{' +thr' if thr else ''}", "spec", mode, thr)
    for mode in ("source", "self") for thr in (False, True)] + [
    ("spec one-pass", "spec", "one-pass", False)]  # fmt: skip
EXACT = "mdlm none"
SAMPLERS = {"mdlm": MDLMSampler, "bd3lm": BD3LMSampler}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default=os.environ.get("A2DKIT_SCALE", "smoke"))
    p.add_argument("--ar_model", help="source AR checkpoint (default: the scale's)")
    p.add_argument("--mdlm_model", help="A2D checkpoint for MDLM (default: the scale's SFT)")
    p.add_argument("--bd3lm_model", help="A2D checkpoint for BD3LM (default: the scale's SFT)")
    p.add_argument("--dataset_args", help="held-out prompts (default: the scale's SFT set)")
    p.add_argument("--num_prompts", type=int, default=32)
    p.add_argument("--max_new_tokens", type=int, help="default: cfg.sampling.max_new_tokens")
    p.add_argument("--block_size", type=int, help="default: cfg.sft.block_size")
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU time is summed)")
    p.add_argument("--draft_length", type=int, default=8, help="speculative rows' draft length")
    return p.parse_args(argv)


def load_models(args, cfg) -> dict:
    """{"ar": (model, tok), "mdlm": (model, tok), "bd3lm": (model, tok)}."""
    from a2dkit.cli.sample import SampleArguments, load

    models = {}
    for algo in ("mdlm", "bd3lm"):
        path = getattr(args, f"{algo}_model")
        if path is None:
            models[algo] = tutorial.load_diffusion_model(cfg, algo, sft=True)
        else:
            models[algo] = load(SampleArguments(model_name_or_path=path, algo=algo))[:2]
    if args.ar_model is None:
        models["ar"] = tutorial.load_source_model(cfg)[:2]
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ar = AutoModelForCausalLM.from_pretrained(args.ar_model, dtype=torch.float32).eval()
        models["ar"] = ar, AutoTokenizer.from_pretrained(args.ar_model)
    return models


def ar_generate(model, tok, prompts: list[list[int]], new: int):
    """Greedy ``generate`` with its KV cache on left-padded prompts -> (B, new) ids, forwards."""
    width, pad = max(map(len, prompts)), tok.pad_token_id
    pad = tok.eos_token_id if pad is None else pad
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    calls = []
    hook = model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=new, do_sample=False,
                                 use_cache=True, pad_token_id=pad)  # fmt: skip
    finally:
        hook.remove()
    return out[:, width:], len(calls)


def spec_row(row, models, prompts, args, new: int) -> dict:
    """Speculative greedy decoding, one prompt at a time: BD3LM drafts, the source AR model (or
    the BD3LM model in causal mode) verifying, or the BD3LM model verifying and drafting in the
    same forward (one-pass); tokens are those committed (up to EOS)."""
    name, _, mode, thr = row
    model, tok = models["bd3lm"]
    stats, eos, k = SpeculativeStats(), tok.eos_token_id, args.draft_length
    if mode == "one-pass":
        decode = lambda p: one_pass_self_decode(model, p, new, k, tok.mask_token_id,  # noqa: E731
                                                eos_token_id=eos, stats=stats)  # fmt: skip
    else:
        verifier = models["ar"][0] if mode == "source" else CausalVerifier(model)
        threshold = args.threshold if thr else None
        drafter = sampler_drafter(BD3LMSampler(model, tok), stats, threshold=threshold)
        decode = lambda p: speculative_greedy(verifier, drafter, p, new, k, eos, stats)  # noqa: E731
    cpu, wall = time.process_time(), time.perf_counter()
    gens = [decode(p) for p in prompts]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return dict(name=name, cpu_tps=stats.tokens / cpu, wall_tps=stats.tokens / wall,
                nfe_per_token=stats.forwards_per_token, gens=gens, stats=stats,
                eos=eos, texts=tok.batch_decode(gens))  # fmt: skip


def run_row(row, models, prompts, args, new: int, block: int) -> dict:
    """Generate for every prompt in batches; time it, count forwards and generated positions."""
    name, algo, kv, thr = row
    if algo == "spec":
        return spec_row(row, models, prompts, args, new)
    if algo == "causal":  # the BD3LM model's own AR mode: the spec self rows' reference
        with causal_mode(models["bd3lm"][0]):
            return run_row((name, "ar-bd3lm", kv, thr), models, prompts, args, new, block)
    model, tok = models["bd3lm" if algo == "ar-bd3lm" else algo]
    sampler_cls = None if algo.startswith("ar") else SAMPLERS[algo]
    sampler = None if sampler_cls is None else sampler_cls(model, tok)
    kw = dict(max_new_tokens=new, block_size=block, steps=new, kv_cache=kv, return_history=False)
    kw["threshold"] = args.threshold if thr else None
    texts, gens, nfe, tokens = [], [], 0, 0
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(prompts), args.batch_size):
        batch = prompts[i : i + args.batch_size]
        if sampler is None:
            gen, calls = ar_generate(model, tok, batch, new)
        else:
            out = sampler.sample(batch, **kw)
            gen, calls = out.sequences[:, out.gen_start : out.gen_end], out.nfe
        nfe, tokens = nfe + calls, tokens + gen.shape[1]  # one batched forward serves each row
        gens += [g[:new].tolist() for g in gen]
        texts += tok.batch_decode(gen.tolist(), skip_special_tokens=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = tokens * 1.0  # generated positions per row, summed over batches
    return dict(name=name, cpu_tps=n / cpu, wall_tps=n / wall, nfe_per_token=nfe / n,
                texts=texts, gens=gens)  # fmt: skip


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Fraction of generated positions (over the common length of each pair) that agree."""
    same = sum(sum(x == y for x, y in zip(p, q, strict=False)) for p, q in zip(a, b, strict=True))
    return same / sum(min(len(p), len(q)) for p, q in zip(a, b, strict=True))


def table(rows: list[dict]) -> str:
    lines = ["| decoder | tok/s CPU | tok/s wall | NFE/token | exact match | agree w/ exact "
             "| ×AR (CPU) | ×exact MDLM (CPU) | ×exact MDLM (wall) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['cpu_tps']:.1f} | {r['wall_tps']:.1f} | {r['nfe_per_token']:.3f} "
            f"| {r['accuracy']:.3f} | {r['agree']:.3f} | {r['x_ar']:.2f} | {r['x_exact']:.2f} "
            f"| {r['x_exact_wall']:.2f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = tutorial.get_scale(args.scale)
    new = args.max_new_tokens or cfg.sampling.max_new_tokens
    block = args.block_size or cfg.sft.block_size  # the SFT models' blocks
    test = data.load_dataset_args(args.dataset_args or cfg.sft.dataset_args)["test"]
    test = test.select(range(min(len(test), args.num_prompts)))
    models = load_models(args, cfg)
    prompts = data.chat_prompts(test, models["mdlm"][1])
    refs = list(test["answer"]) if "answer" in test.column_names else None
    print(f"{len(prompts)} held-out prompts, max_new_tokens={new}, block_size={block}, "
          f"steps=max_new_tokens, temperature 0, threshold={args.threshold}, "
          f"{args.threads} thread(s); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}", flush=True)  # fmt: skip
    rows = []
    for row in [("ar greedy", "ar", None, False), *ROWS, *SPEC_ROWS]:
        rows.append(run_row(row, models, prompts, args, new, block))
        print(f"[{row[0]}: {rows[-1]['cpu_tps']:.1f} tok/s CPU]", flush=True)
    by = {r["name"]: r for r in rows}
    for r in rows:
        r["accuracy"] = exact_match.exact_match(r["texts"], refs) if refs else float("nan")
        r["agree"] = agreement(r["gens"], by[EXACT]["gens"])
        r["x_ar"] = r["cpu_tps"] / by["ar greedy"]["cpu_tps"]
        r["x_exact"] = r["cpu_tps"] / by[EXACT]["cpu_tps"]
        r["x_exact_wall"] = r["wall_tps"] / by[EXACT]["wall_tps"]
    return rows


def _until_eos(ids: list[int], eos: int | None) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def spec_report(rows: list[dict]) -> list[str]:
    """Per speculative row: acceptance, forwards per token, identity with its verifier's greedy
    generate (prompt by prompt, up to EOS), tok/s against it."""
    by, lines = {r["name"]: r for r in rows}, []
    for r in rows:
        if "stats" not in r:
            continue
        ref, eos = by["ar greedy" if "source" in r["name"] else "bd3lm as AR"], r["eos"]
        pairs = zip(r["gens"], ref["gens"], strict=True)
        same = sum(_until_eos(a, eos) == _until_eos(b, eos) for a, b in pairs)
        s = r["stats"]
        lines.append(f"{r['name']}: {s.accepted_per_verifier_forward:.2f} accepted per verifier "
                     f"forward, {s.forwards_per_token:.2f} forwards per token (drafter "
                     f"{s.drafter_forwards}, verifier {s.verifier_forwards}), identical to "
                     f"{ref['name']} on {same}/{len(r['gens'])} prompts, wall tok/s "
                     f"{r['wall_tps'] / ref['wall_tps']:.2f}x {ref['name']}'s")  # fmt: skip
    return lines


def report(rows: list[dict]) -> list[str]:
    """One line per target of the issue: the measured ratio or exact-match gap, met or MISSED."""
    by = {r["name"]: r for r in rows}
    fast, exact, ar = by["mdlm dual +thr"], by[EXACT], by["ar greedy"]
    bd3, thr = by["bd3lm reuse +thr"], by[f"{EXACT} +thr"]
    checks = [
        ("MDLM threshold: fixed-step forwards/token over threshold's",
         exact["nfe_per_token"] / thr["nfe_per_token"], 3.0),
        ("MDLM dual+threshold tokens/s vs exact MDLM (CPU)", fast["x_exact"], 4.0),
        ("BD3LM+threshold: AR forwards/token over BD3LM's",
         ar["nfe_per_token"] / bd3["nfe_per_token"], 3.0),
    ]  # fmt: skip
    verdict = {True: "met", False: "MISSED"}
    lines = [f"{label}: {value:.2f}x (target >= {target:g}x: {verdict[value >= target]})"
             for label, value, target in checks]  # fmt: skip
    for label, r in (("threshold", thr), ("dual+threshold", fast)):
        gap = 100 * (exact["accuracy"] - r["accuracy"])
        lines.append(f"exact match: exact MDLM {exact['accuracy']:.3f}, {label} "
                     f"{r['accuracy']:.3f} ({gap:+.1f} points lost; target <= 1: "
                     f"{verdict[gap <= 1]})")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    rows = run(parse(argv))
    print(table(rows))
    print("\n".join(report(rows)))
    print("\n".join(spec_report(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
