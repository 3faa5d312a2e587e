"""What a GRPO run shows: its reward curve, first- and last-quarter means, and the reward of one
fixed sampler on held-out prompts before and after. References: d1 arXiv 2504.12216 (§4: reward
curves); GRPO arXiv 2402.03300.
"""

from __future__ import annotations

from typing import Any

from a2dkit.grpo.completions import cut_after_eos, eos_token_ids

__all__ = ["logged", "quarter_means", "held_out_reward"]


def logged(log_history: list[dict], key: str = "reward") -> list[float]:
    """The values of ``key`` in a trainer's ``state.log_history`` (one per logged step), in order.

    TRL logs the summed reward as ``"reward"`` and each function's as ``"rewards/<name>/mean"``;
    with ``num_iterations > 1`` only the steps that generated carry rewards.
    """
    values = [float(h[key]) for h in log_history if key in h]
    if not values:
        keys = sorted({k for h in log_history for k in h})
        raise KeyError(f"{key!r} was never logged; logged keys: {keys}")
    return values


def quarter_means(values: list[float]) -> tuple[float, float]:
    """Mean of the first and of the last quarter of ``values`` (at least one value each)."""
    if len(values) < 4:
        raise ValueError(f"need at least 4 logged values for quarters, got {len(values)}")
    q = len(values) // 4
    return sum(values[:q]) / q, sum(values[-q:]) / q


def held_out_reward(
    model, tokenizer, sampler_cls, rows, reward_funcs, sampler_config, **sample_kwargs: Any
) -> dict[str, Any]:
    """Mean of each reward over completions of ``rows`` (a GRPO task split) by one sampler.

    Args:
        sampler_cls: ``MDLMSampler`` or ``BD3LMSampler``; ``sampler_config`` its config.
        reward_funcs: the ``a2dkit.grpo.rewards`` functions (their ``__name__`` keys the result).
        sample_kwargs: passed to ``sample`` (e.g. ``temperature=0.0`` for greedy).

    Returns:
        ``{"rewards": {name: mean}, "completions": [text, ...]}``; the model is left in eval mode.
    """
    prompts = [
        tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True,
                                      return_dict=False)
        for r in rows
    ]  # fmt: skip
    out = sampler_cls(model, tokenizer).sample(prompts, sampler_config, **sample_kwargs)
    # as TRL scores completions: each cut after its first EOS, special tokens dropped (without
    # the cut, whatever follows the EOS, which GRPO never trains, would join the answer)
    eos = eos_token_ids(model, tokenizer)
    ids = [cut_after_eos(r, eos) for r in out.sequences[:, out.gen_start : out.gen_end].tolist()]
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    columns = {c: rows[c] for c in rows.column_names if c != "prompt"}
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    means = {f.__name__: sum(f(completions, **columns)) / len(texts) for f in reward_funcs}
    return {"rewards": means, "completions": texts}
