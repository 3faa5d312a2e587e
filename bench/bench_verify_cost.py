"""Bench: what one forward of one-pass speculative decoding costs against the AR model's own
decoding, and so how many tokens per forward each draft shape needs to match AR ``generate`` and
to beat it by ``--target``. One run; each time the best of ``--repeats`` (as ``timeit``: another
process can only add time).

Speculative decoding pays off where a forward over a few columns costs about what one column
costs: the weights are read once either way (memory-bound, a GPU at small batch). A one-pass
forward with a draft of k and m candidates reads (k + m)(k + 2) columns after the KV cache
(``one_pass_layout``); its cost over a one-token step is a bar that every drafter has to clear
before it gains anything. The bar printed here ignores the decoding loop's own bookkeeping, so
it is a lower bound; ``bench_speculative.py`` measures whole runs.

Run: A2DKIT_SCALE=laptop python bench/bench_verify_cost.py --threads 2
     python bench/bench_verify_cost.py --size qwen3-0.6b --device cuda --dtype bfloat16
References: TiDAR arXiv 2511.08923 (§3, "free" draft slots in a memory-bound forward);
speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §3.4 walltime).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time

import torch
from transformers import DynamicCache

from a2dkit import tutorial
from a2dkit.models import causal_mode
from a2dkit.models.conventions import trained_shift
from a2dkit.samplers.kv_cache import truncate
from a2dkit.samplers.one_pass import draft_parents, one_pass_layout, read_rows

# Qwen/Qwen3-0.6B's config.json (the warmup and full scales' source): a forward's cost depends on
# these shapes, not on the weights, so a random model of them measures it without the Hub
SIZES = {
    "qwen3-0.6b": dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, tie_word_embeddings=True, rope_theta=1e6, rms_norm_eps=1e-6,
                       max_position_embeddings=40960),
}  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default=os.environ.get("A2DKIT_SCALE", "smoke"))
    p.add_argument("--model", help="an A2D checkpoint (default: the scale's source, converted)")
    p.add_argument("--size", choices=sorted(SIZES), help="instead: a random model of this size")
    p.add_argument("--shapes", default="1x1,1x2,1x4,2x1,3x1,3x4,7x1",
                   help="draft shapes KxM: draft length k, m candidates for its first token")
    p.add_argument("--past", type=int, default=96, help="tokens in the KV cache before a forward")
    p.add_argument("--new_tokens", type=int, default=32, help="the generate baseline's length")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--target", type=float, default=1.3, help="x AR generate to print the bar of")
    p.add_argument("--device", help="default: the scale's")
    p.add_argument("--dtype", help="default: the scale's (float32, bfloat16, float16)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    p.add_argument("--linears", action="store_true",
                   help="also time the model's linear layers alone, per number of input rows")
    p.add_argument("--json", help="write the rows here")  # fmt: skip
    args = p.parse_args(argv)
    args.shape_list = []
    for shape in args.shapes.split(","):
        k, _, m = shape.partition("x")
        if not (k.isdigit() and m.isdigit() and int(k) >= 1 and int(m) >= 1):
            p.error(f"--shapes: {shape!r} is not KxM with k >= 1 and m >= 1 (e.g. 1x4)")
        args.shape_list.append((int(k), int(m)))
    if args.model and args.size:
        p.error(f"--model {args.model} and --size {args.size}: give one of them")
    if args.past < 1 or args.repeats < 1 or args.new_tokens < 1:
        p.error(f"--past {args.past}, --repeats {args.repeats} and --new_tokens "
                f"{args.new_tokens} must each be >= 1")  # fmt: skip
    return args


def _model(args, cfg):
    """(A2D model, mask token id): ``--model``; a random model of ``--size``; or the scale's
    source converted (the family and size of every drafter of the scale; a forward's cost does
    not depend on the weights)."""
    from a2dkit.convert import to_diffusion
    from a2dkit.convert.load import load_model
    from a2dkit.models import registry

    if args.model:
        model, tok = load_model(args.model)
    elif args.size:
        registry.register_all()
        dims = SIZES[args.size]
        mask_token_id = dims["vocab_size"] - 1
        config = registry.A2D_CONFIGS["a2d-qwen3"](**dims, is_causal=False,
                                                   mask_token_id=mask_token_id)  # fmt: skip
        config._attn_implementation = "sdpa"
        model, tok = registry.A2D_MODELS["a2d-qwen3"](config), None
    else:
        source, tok, _ = tutorial.load_source_model(cfg)
        model, tok = to_diffusion(copy.deepcopy(source), copy.deepcopy(tok))[:2]
    dtype = getattr(torch, args.dtype or cfg.hardware.dtype)
    model = model.to(device=args.device or cfg.device, dtype=dtype).eval()
    return model, model.config.mask_token_id if tok is None else tok.mask_token_id


def _best_ms(fn, repeats: int, device: torch.device) -> float:
    """The shortest wall time of ``fn()`` in ms, after one warm-up call."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def _one_pass_forward(model, cache, past: torch.Tensor, k: int, m: int, mask_token_id: int):
    """(one-pass's forward for a draft of k with m candidates after ``cache``, which it leaves
    as it was; its column count; the rows its LM head runs on)."""
    parents = draft_parents(k, m - 1)
    mask, positions = one_pass_layout(past.shape[1], len(parents), k + 1, parents)
    masks = torch.full((1, mask.shape[-2] - len(parents)), mask_token_id)
    keep = read_rows(len(parents), k + 1, int(trained_shift(model)))  # as the decoder reads
    inputs = dict(input_ids=torch.cat([past[:, -len(parents) :], masks], dim=1),
                  position_ids=positions, attention_mask=mask, logits_to_keep=keep)  # fmt: skip
    inputs = {name: x.to(model.device) for name, x in inputs.items()}

    def forward():
        model(**inputs, past_key_values=cache, use_cache=True)
        truncate(cache, past.shape[1])

    return forward, mask.shape[-2], len(keep)


@torch.inference_mode()
def linear_ms(model, rows: list[int], repeats: int) -> list[dict]:
    """Per number of input rows M: the time to apply every linear layer of ``model`` once (its
    weights streamed from memory, as in a forward), as ``torch.nn.functional.linear`` computes
    it and as the product W·xᵀ: what a forward's columns cost before attention."""
    weights = list({id(m.weight): m.weight for m in model.modules()
                    if isinstance(m, torch.nn.Linear)}.values())  # a tied head once  # fmt: skip
    out = []
    for m in rows:
        xs = [torch.randn(m, w.shape[1], dtype=w.dtype, device=w.device) for w in weights]

        def linear(xs=xs):
            for w, x in zip(weights, xs, strict=True):
                torch.nn.functional.linear(x, w)

        def transposed(xs=xs):
            for w, x in zip(weights, xs, strict=True):
                w @ x.T

        out.append(dict(rows=m, linear_ms=_best_ms(linear, repeats, model.device),
                        transposed_ms=_best_ms(transposed, repeats, model.device)))  # fmt: skip
    return out


@torch.inference_mode()
def measure(model, mask_token_id: int, args) -> tuple[float, float, list[dict]]:
    """(ms per ``generate`` token, ms per one-token cached step, one row per draft shape)."""
    device = model.device
    past = torch.randint(mask_token_id, (1, args.past), generator=torch.Generator().manual_seed(0))
    ids = past.to(device)

    def generate(n: int):
        return lambda: model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                      pad_token_id=0)  # fmt: skip

    cache, runs = DynamicCache(), max(3, args.repeats // 2)
    with causal_mode(model):
        model(input_ids=ids, past_key_values=cache, use_cache=True)
        # per generated token: the prompt's prefill and the first token taken out
        n = args.new_tokens + 1
        gen_ms = (_best_ms(generate(n), runs, device) - _best_ms(generate(1), runs, device))
        gen_ms /= args.new_tokens
        if gen_ms <= 0:
            raise SystemExit(f"error: generate timed {gen_ms:.2f} ms per token: the machine is "
                             "busy; rerun with more --repeats or --new_tokens")  # fmt: skip

        def step():
            model(input_ids=ids[:, -1:], past_key_values=cache, use_cache=True)
            truncate(cache, args.past)

        step_ms = _best_ms(step, args.repeats, device)
    rows = []
    for k, m in args.shape_list:
        forward, columns, head_rows = _one_pass_forward(model, cache, past, k, m, mask_token_id)
        ms = _best_ms(forward, args.repeats, device)
        rows.append(dict(draft_length=k, candidates=m, columns=columns, head_rows=head_rows, ms=ms,
                         x_step=ms / step_ms, even=ms / gen_ms, needed=args.target * ms / gen_ms,
                         most=k + 1))  # fmt: skip
    return gen_ms, step_ms, rows


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = tutorial.get_scale(args.scale)
    model, mask_token_id = _model(args, cfg)
    gen_ms, step_ms, rows = measure(model, mask_token_id, args)
    t = args.target
    print(f"AR generate {gen_ms:.2f} ms/token; one-token cached step {step_ms:.2f} ms")
    print(f"{'k':>3} {'m':>3} {'columns':>7} {'head':>5} {'ms':>8} {'x step':>7} {'even':>6} "
          f"{f'{t:g}x AR':>7} {'most':>5}")  # fmt: skip
    for r in rows:
        print(f"{r['draft_length']:>3} {r['candidates']:>3} {r['columns']:>7} {r['head_rows']:>5} "
              f"{r['ms']:>8.2f} "
              f"{r['x_step']:>7.2f} {r['even']:>6.2f} {r['needed']:>7.2f} {r['most']:>5}"
              f"{'' if r['needed'] <= r['most'] else '  (out of reach)'}")  # fmt: skip
    machine = (torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else
               f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"\n[bench_verify_cost] scale={cfg.name}, {args.model or args.size or 'source'}: "
          f"{type(model).__name__} {model.dtype}, "
          f"past={args.past}; even / {t:g}x AR: tokens per forward needed (a lower bound); "
          f"most: k + 1; {machine}")  # fmt: skip
    result = dict(scale=cfg.name, model=args.model or args.size or "source", machine=machine,
                  dtype=str(model.dtype), past=args.past,
                  generate_ms_per_token=gen_ms, step_ms=step_ms, target=t, rows=rows)  # fmt: skip
    if args.linears:
        widths = sorted({1, 2, 3, *(r["columns"] for r in rows)})
        result["linears"] = linear_ms(model, widths, args.repeats)
        print(f"\nthe linear layers alone ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
              "parameters), ms per call with M input rows:")  # fmt: skip
        for r in result["linears"]:
            print(f"  M = {r['rows']:>3}: F.linear {r['linear_ms']:8.2f}   W @ x.T "
                  f"{r['transposed_ms']:8.2f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
