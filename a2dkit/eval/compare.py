"""The retention benchmark: a converted model against its AR source on the same held-out data,
one row per model: agreement of greedy answers (chrF, exact match), the likelihood gap in nats
per token (source NLL vs the A2D ELBO bound), HumanEval pass@1, forward passes per token and tok/s.

The source's own row has ``algo`` "ar" (its answers are the reference, chrF 1 by definition).
References: chrF, Popović 2015; MDLM arXiv 2406.07524 §3 and BD3LM arXiv 2503.09573 §3 (ELBO);
HumanEval, Chen et al. 2021 (arXiv 2107.03374).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from a2dkit.eval.agreement import chrf
from a2dkit.eval.humaneval import Problem, pass_at_1
from a2dkit.eval.retention import likelihood_gap
from a2dkit.samplers import (
    BD3LMSampler,
    MDLMSampler,
    SpeculativeStats,
    sampler_drafter,
    speculative_decode,
)
from a2dkit.samplers.prompts import encode

__all__ = [
    "Decoding",
    "RetentionRow",
    "chat_inputs",
    "decode",
    "answer_nll_gap",
    "text_nll_gap",
    "retention_row",
    "Speculation",
    "speculate",
]


@dataclass
class Decoding:
    """One model's greedy outputs for a list of inputs, with what they cost."""

    texts: list[str]
    forwards: int  # forward passes per row, summed over rows (a batched call: one per row)
    tokens: int  # generated tokens up to each row's stop token
    seconds: float

    @property
    def forwards_per_token(self) -> float:
        """Forward passes per generated token, as one row decoded alone would count them."""
        return self.forwards / max(self.tokens, 1)

    @property
    def tok_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


@dataclass
class RetentionRow:
    """One row of the retention table (``bench/bench_retention.py --json``)."""

    name: str
    algo: str  # "ar" (the source), "mdlm" or "bd3lm"
    recipe: str  # "source", "plain", or the recipe's name
    chrf: float
    exact_match: float
    nll_gap: float | None  # nats per answer token: A2D ELBO bound - source NLL (0 for the source)
    source_nll: float | None
    nll_bound: float | None
    nll_gap_text: float | None  # the same on held-out plain text (not the source's own outputs)
    humaneval_pass1: float | None
    forwards_per_token: float
    tok_per_s: float
    train_seconds: float | None = None
    accepted_per_forward: float | None = None  # speculative rows: drafted tokens accepted
    identical: float | None = None  # speculative rows: share of outputs equal to the verifier's

    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def _count_forwards(model):
    """Counts the model's top-level forward calls."""
    calls = [0]
    handle = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def chat_inputs(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids of one user turn per prompt, chat template applied (generation prompt added)."""
    return [encode(tokenizer, [{"role": "user", "content": p}], True) for p in prompts]


def _stop_ids(tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    return {i for i in ids if isinstance(i, int) and i >= 0 and i != tokenizer.unk_token_id}


def _cut(tokenizer, ids: list[int], stop: set[int]) -> tuple[str, int]:
    end = next((i for i, t in enumerate(ids) if t in stop), len(ids))
    return tokenizer.decode(ids[:end], skip_special_tokens=True).strip(), min(end + 1, len(ids))


@torch.inference_mode()
def _ar_batch(model, batch: list[list[int]], pad: int, stop: set[int], max_new_tokens: int):
    from transformers import GenerationConfig

    width = max(map(len, batch))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in batch], device=model.device)
    mask = torch.arange(width)[None] >= torch.tensor([width - len(r) for r in batch])[:, None]
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                              eos_token_id=sorted(stop), pad_token_id=pad)  # fmt: skip
    out = model.generate(input_ids=ids, attention_mask=mask.long().to(model.device),
                         generation_config=config)  # fmt: skip
    return out[:, width:].tolist()


def decode(
    model,
    tokenizer,
    inputs: list[list[int]],
    *,
    algo: str,
    max_new_tokens: int,
    block_size: int = 8,
    steps: int | None = None,
    threshold: float | None = None,
    batch_size: int = 16,
) -> Decoding:
    """Greedy outputs of ``model`` after each input: HF ``generate`` for ``algo`` "ar", else the
    kit's MDLM / BD3LM sampler (one token per step unless ``steps``/``threshold`` say otherwise).
    Each text is cut at the first EOS / end-of-turn token."""
    if algo not in ("ar", "mdlm", "bd3lm"):
        raise ValueError(f"algo={algo!r} is not valid; choose one of ('ar', 'mdlm', 'bd3lm')")
    stop = _stop_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop)
    sampler = None
    if algo != "ar":
        sampler = (MDLMSampler if algo == "mdlm" else BD3LMSampler)(model, tokenizer)
    options = dict(max_new_tokens=max_new_tokens, block_size=block_size, temperature=0.0,
                   steps=steps or max_new_tokens, threshold=threshold)  # fmt: skip
    texts, tokens, forwards, start = [], 0, 0, time.perf_counter()
    with _count_forwards(model) as calls:
        for i in range(0, len(inputs), batch_size):
            batch, before = inputs[i : i + batch_size], calls[0]
            if sampler is None:
                new = _ar_batch(model, batch, pad, stop, max_new_tokens)
            else:
                out = sampler.sample(batch, **options)
                new = out.sequences[:, out.gen_start :].tolist()
            for row in new:
                text, n = _cut(tokenizer, row, stop)
                texts.append(text)
                tokens += n
            forwards += (calls[0] - before) * len(batch)
    return Decoding(texts, forwards, tokens, time.perf_counter() - start)


def _pooled_gap(source, model, rows, *, algo, block_size, mc_num, seed) -> tuple[float, float]:
    """(source NLL, A2D ELBO bound) per target token over ``rows`` of (ids, prompt_len)."""
    total_source = total_bound = 0.0
    count = 0
    generator = torch.Generator().manual_seed(seed)
    for ids, prompt_len in rows:
        gap = likelihood_gap(source, model, torch.tensor([ids]), algo=algo,
                             block_size=block_size if algo == "bd3lm" else None,
                             prompt_len=prompt_len, mc_num=mc_num, generator=generator)  # fmt: skip
        total_source += gap.source_nll * gap.tokens
        total_bound += gap.a2d_nll_bound * gap.tokens
        count += gap.tokens
    return total_source / count, total_bound / count


def answer_nll_gap(
    source, model, tokenizer, prompts: list[str], answers: list[str], *, algo: str,
    block_size: int | None = None, mc_num: int = 8, seed: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """(source NLL, A2D ELBO bound), nats per answer token, over held-out (prompt, answer) pairs:
    each answer scored after its chat-templated prompt, the answer's end-of-turn token included."""
    end, rows = tokenizer.eos_token or "", []
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = chat_inputs(tokenizer, [prompt])[0]
        answer_ids = tokenizer(answer + end, add_special_tokens=False)["input_ids"]
        rows.append((ids + answer_ids, len(ids)))
    return _pooled_gap(source, model, rows, algo=algo, block_size=block_size, mc_num=mc_num,
                       seed=seed)  # fmt: skip


def text_nll_gap(
    source, model, tokenizer, texts: list[str], *, algo: str, block_size: int | None = None,
    mc_num: int = 8, seed: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """(source NLL, A2D ELBO bound), nats per token, of held-out plain texts (all but the first
    token of each scored): text neither model was trained on, unlike the source's own answers."""
    rows = [(tokenizer(t, add_special_tokens=False)["input_ids"], 1) for t in texts]
    return _pooled_gap(source, model, rows, algo=algo, block_size=block_size, mc_num=mc_num,
                       seed=seed)  # fmt: skip


def retention_row(
    name: str, algo: str, recipe: str, decoding: Decoding, reference: list[str], *,
    nll: tuple[float, float] | None = None, nll_text: tuple[float, float] | None = None,
    problems: list[Problem] | None = None,
    code: Decoding | None = None, train_seconds: float | None = None,
) -> RetentionRow:  # fmt: skip
    """A table row from a model's decodings: chrF and exact match of its answers against the
    source's (``reference``), the likelihood gap (``nll`` from ``answer_nll_gap``) and HumanEval
    pass@1 of its ``code`` completions (each run in the sandbox)."""
    if len(decoding.texts) != len(reference):
        raise ValueError(f"{len(decoding.texts)} answers but {len(reference)} reference answers")
    exact = sum(a == b for a, b in zip(decoding.texts, reference, strict=True)) / len(reference)
    passed = pass_at_1(problems, code.texts) if problems and code is not None else None
    return RetentionRow(
        name=name, algo=algo, recipe=recipe, chrf=chrf(decoding.texts, reference),
        exact_match=exact, nll_gap=None if nll is None else nll[1] - nll[0],
        source_nll=None if nll is None else nll[0], nll_bound=None if nll is None else nll[1],
        nll_gap_text=None if nll_text is None else nll_text[1] - nll_text[0],
        humaneval_pass1=passed, forwards_per_token=decoding.forwards_per_token,
        tok_per_s=decoding.tok_per_s, train_seconds=train_seconds,
    )  # fmt: skip


@dataclass
class Speculation:
    """Speculative decoding of a list of inputs, one row at a time, beside the verifier's own
    greedy ``generate`` of the same rows (the lossless reference and the speed baseline)."""

    decoding: Decoding
    stats: SpeculativeStats
    verifier: Decoding  # the verifier's greedy generate, unbatched
    identical: int  # rows whose ids equal the verifier's greedy ids


def speculate(
    verifier, model, tokenizer, inputs: list[list[int]], *, algo: str, draft_length: int,
    max_new_tokens: int, threshold: float | None = None,
) -> Speculation:  # fmt: skip
    """Drafts of ``draft_length`` tokens by the A2D ``model`` (its ``algo`` sampler, one block,
    fixed steps or ``threshold``), verified by ``verifier`` (the source AR model, or the A2D
    model itself in causal mode); each row's ids are checked against the verifier's own greedy
    ``generate`` (Leviathan et al. 2023, arXiv 2211.17192 §2.3)."""
    stop = _stop_ids(tokenizer)
    eos = tokenizer.eos_token_id
    reference = decode(verifier, tokenizer, inputs, algo="ar", max_new_tokens=max_new_tokens,
                       batch_size=1)  # fmt: skip
    sampler = (MDLMSampler if algo == "mdlm" else BD3LMSampler)(model, tokenizer)
    stats = SpeculativeStats()
    options = {"temperature": 0.0} | ({"threshold": threshold} if threshold else {})
    drafter = sampler_drafter(sampler, stats, **options)
    texts, tokens, identical, start = [], 0, 0, time.perf_counter()
    for ids, ref in zip(inputs, reference.texts, strict=True):
        new = speculative_decode(verifier, drafter, ids, max_new_tokens, draft_length,
                                 eos_token_id=eos, stats=stats)  # fmt: skip
        text, n = _cut(tokenizer, new, stop)
        texts.append(text)
        tokens += n
        identical += text == ref
    seconds = time.perf_counter() - start
    forwards = stats.verifier_forwards + stats.drafter_forwards
    return Speculation(Decoding(texts, forwards, tokens, seconds), stats, reference, identical)
