"""``--speculative source|self`` for ``sample`` and ``chat``: the A2D model drafts
``--draft_length`` tokens, an AR verifier (the source model, or the same weights in causal mode)
accepts them; the output is the verifier's (greedy, or sampled at ``--temperature``). ``one-pass``:
the same weights verify a draft and draft the next block in one forward (greedy or sampled; TiDAR).

Run: python -m a2dkit.cli.sample --model_name_or_path models/a2d/Qwen3-0.6B --speculative source \
    --draft_length 8 --json out.json
References: speculative decoding arXiv 2211.17192; MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import math

from a2dkit.cli.verifier import load_verifier
from a2dkit.samplers import drafters
from a2dkit.samplers.one_pass import one_pass_self_decode
from a2dkit.samplers.speculative import SpeculativeStats, speculative_decode_batch

MODES = ("source", "self", "one-pass")  # one-pass: self, verifying and drafting in one forward


def check_flags(args) -> None:
    """Flag combinations speculative decoding cannot honour (no file is read)."""
    m = args.draft_candidates
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"draft_candidates={m!r} must be an int >= 1 (1: one draft)")
    if m > 1 and (args.speculative != "one-pass" or args.temperature > 0):
        raise ValueError(f"draft_candidates={m} verifies a draft tree greedily: it needs "
                         f"--speculative one-pass and --temperature 0 (got speculative="
                         f"{args.speculative!r}, temperature={args.temperature})")  # fmt: skip
    if args.speculative is None:
        if args.verifier_path is not None:
            raise ValueError("--verifier_path needs --speculative source")
        return
    if args.speculative not in MODES:
        raise ValueError(f"speculative={args.speculative!r} is not valid; choose one of {MODES} "
                         "or omit it (off)")  # fmt: skip
    if not 0 < args.draft_length <= args.max_new_tokens:
        raise ValueError(f"draft_length={args.draft_length} must lie in 1..max_new_tokens="
                         f"{args.max_new_tokens}")  # fmt: skip
    if args.cfg_scale != 0:
        raise ValueError(f"--speculative cannot honour cfg_scale={args.cfg_scale}: the AR "
                         "verifier has no guidance; use --cfg_scale 0")  # fmt: skip
    if args.remasking == "random":
        raise ValueError("--speculative cannot honour remasking='random'; use low_confidence")
    if args.temperature > 0 and args.threshold is not None:
        raise ValueError(
            f"--speculative at temperature={args.temperature} drafts left to right in fixed "
            f"steps; threshold={args.threshold} cannot be honoured"
        )
    if args.speculative == "one-pass" and args.threshold is not None:
        raise ValueError(f"--speculative one-pass drafts a whole block in the verifying forward; "
                         f"threshold={args.threshold} cannot be honoured (omit it, or use "
                         "--speculative self)")  # fmt: skip
    if args.speculative != "source" and args.verifier_path is not None:
        raise ValueError("--verifier_path is for --speculative source; self verifies with the "
                         "model's own weights")  # fmt: skip


def drafter(args, sampler, stats: SpeculativeStats):
    """One block of ``--draft_length`` per draft, with the flags' share of ``--steps``."""
    steps = max(1, math.ceil(args.steps * args.draft_length / args.max_new_tokens))
    if args.temperature > 0:
        return drafters.proposal_drafter(sampler, args.temperature, stats, steps=steps)
    return drafters.sampler_drafter(sampler, stats, steps=steps, remasking=args.remasking,
                                    threshold=args.threshold)  # fmt: skip


def generate(
    args, verifier, draft, rows: list[list[int]], eos: int | None, stats
) -> list[list[int]]:
    """Every prompt's completion ids, the prompts verified together in one padded batch."""
    n, k, t = args.max_new_tokens, args.draft_length, args.temperature
    return speculative_decode_batch(verifier, draft, rows, n, k, temperature=t, eos_token_id=eos,
                                    stats=stats)  # fmt: skip


def summary(stats: SpeculativeStats) -> str:
    return (f"[a2dkit] speculative: {stats.accepted_per_verifier_forward:.2f} accepted per "
            f"verifier forward, {stats.forwards_per_token:.2f} forwards per token, "
            f"{stats.tokens_per_second:.1f} tok/s")  # fmt: skip


def completer(args, path: str | None, model, tokenizer, sampler):
    """(``complete(rows) -> texts``, its running statistics): the verifier loaded once."""
    stats, eos = SpeculativeStats(), tokenizer.eos_token_id
    if args.speculative == "one-pass":
        n, k, mask_id, t = args.max_new_tokens, args.draft_length, sampler.mask_id, args.temperature
        m = args.draft_candidates
        generate_rows = lambda rows: [one_pass_self_decode(model, r, n, k, mask_id,  # noqa: E731
                                      candidates=m, eos_token_id=eos, temperature=t,
                                      stats=stats) for r in rows]  # fmt: skip
    else:
        verifier = load_verifier(args, path, model, tokenizer)
        draft = drafter(args, sampler, stats)
        generate_rows = lambda rows: generate(args, verifier, draft, rows, eos, stats)  # noqa: E731

    def complete(rows: list[list[int]]) -> list[str]:
        gens = generate_rows(rows)
        return [tokenizer.decode([t for t in g if t != eos], skip_special_tokens=True)
                for g in gens]  # fmt: skip

    return complete, stats


def run(args, path: str | None, model, tokenizer, sampler, inputs) -> tuple[list[str], dict]:
    """Every prompt's completion text (one padded batch) and the statistics (``as_dict``)."""
    complete, stats = completer(args, path, model, tokenizer, sampler)
    texts = complete(inputs)
    print(summary(stats))
    return texts, stats.as_dict()
