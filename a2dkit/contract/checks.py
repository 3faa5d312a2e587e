"""The attention contract: checks that any converted A2D model must pass before it is trained.

The checks run on a float64 copy of the model by default: a correct conversion then differs by
rounding (~1e-12) and a wrong one by O(1e-2..1), so one tolerance decides (float32 noise on a
30-layer model, ~5e-4, would not). Per-layer probes live in ``a2dkit.contract.probes``.
Run on your own converted model:
python -m a2dkit.contract --model_name_or_path models/a2d/Qwen3-0.6B
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2 staircase mask).
"""

from __future__ import annotations

import copy

import torch

from a2dkit.contract.probes import hidden_states_per_layer, isolated_future_changes
from a2dkit.contract.result import ContractResult, max_diff, tolerance
from a2dkit.diffusion import attention, blocks


def _logits(model, input_ids, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids, **kwargs).logits.double()  # (B, L, V)


def _ids(model, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, _vocab(model), (batch, seq_len), generator=gen)  # (B, L)


def _vocab(model) -> int:
    return model.get_input_embeddings().weight.shape[0]


def _bump(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """A different token at every position (wraps inside the vocabulary)."""
    return (ids + 1) % vocab


def check_padding_invariance(model, seq_len: int = 6, pad: int = 2, atol: float | None = None):
    """1. Real-token logits are the same with left/right padding, no mask, batches, mixed rows."""
    atol = tolerance(model) if atol is None else atol
    x, y = _ids(model, 2, seq_len, seed=1)  # (L,), (L,)
    pad_id = 0
    ref = _logits(model, x[None])[0]  # (L, V): mask omitted
    ref_y = _logits(model, y[None])[0]
    ones, zeros = torch.ones(seq_len, dtype=torch.long), torch.zeros(pad, dtype=torch.long)
    padding = torch.full((pad,), pad_id)
    left = torch.cat([padding, x])[None], torch.cat([zeros, ones])[None]
    right = torch.cat([x, padding])[None], torch.cat([ones, zeros])[None]
    mixed_ids = torch.stack([torch.cat([padding, x]), torch.cat([y, padding])])  # (2, L + pad)
    mixed_mask = torch.stack([torch.cat([zeros, ones]), torch.cat([ones, zeros])])
    mixed = _logits(model, mixed_ids, attention_mask=mixed_mask)
    variants = {
        "attention_mask=None": _logits(model, x[None], attention_mask=None)[0],
        "left padding": _logits(model, left[0], attention_mask=left[1])[0, pad:],
        "right padding": _logits(model, right[0], attention_mask=right[1])[0, :seq_len],
        "batch of rows": _logits(model, torch.stack([x, y]))[0],
        "mixed left/right rows (row 0)": mixed[0, pad:],
    }
    diffs = {name: max_diff(out, ref) for name, out in variants.items()}
    diffs["mixed left/right rows (row 1)"] = max_diff(mixed[1, :seq_len], ref_y)
    worst = max(diffs, key=diffs.get)
    return ContractResult("padding invariance", diffs[worst] <= atol, diffs[worst], atol, worst)


def _token_changes(model, x: torch.Tensor, y: torch.Tensor, position: int) -> list[float]:
    """Per layer (then the logits): change at ``position`` between inputs ``x`` and ``y``."""
    hx = hidden_states_per_layer(model, x)
    hy = hidden_states_per_layer(model, y)
    return [max_diff(a[:, position], b[:, position]) for a, b in zip(hx, hy, strict=True)]


def check_future_affects_past(model, source=None, seq_len: int = 6, threshold: float | None = None):
    """2. The future reaches the past at every decoder layer (and nowhere in the causal source).

    Two probes, both per layer: changing token 2 moves the hidden state at position 1 after
    every layer and the logits; perturbing one layer's own input after position 1 moves that
    layer's output at positions <= 1 (catches a causal layer anywhere in the stack).
    """
    threshold = tolerance(model) if threshold is None else threshold
    vocab = min(_vocab(model), _vocab(source)) if source is not None else _vocab(model)
    x = _ids(model, 1, seq_len, seed=2) % vocab
    y = x.clone()
    y[0, 2] = _bump(y[0, 2], vocab)
    token = _token_changes(model, x, y, position=1)
    isolated = isolated_future_changes(model, x, position=1)
    probes = {f"token 2 -> hidden state after layer {i + 1}": c for i, c in enumerate(token[:-1])}
    probes["token 2 -> logits at position 1"] = token[-1]
    probes.update({f"layer {i + 1} own input": c for i, c in enumerate(isolated)})
    weakest = min(probes, key=probes.get)
    change = probes[weakest]
    passed, detail = change > threshold, f"weakest: {weakest}"
    if source is not None:
        source_change = max(_token_changes(source, x, y, position=1))
        passed = passed and source_change <= tolerance(source)
        detail += f"; source AR model changed by {source_change:.3g} (max over layers)"
    return ContractResult("future affects past", passed, change, threshold, detail)


def check_staircase_kv_cache(model, block_size: int = 3, atol: float | None = None):
    """3. Block-causal full forward == block 1 with use_cache=True, then block 2 on that cache."""
    atol = tolerance(model) if atol is None else atol
    x = _ids(model, 1, 2 * block_size, seed=3)  # (1, 2b)
    valid = torch.ones_like(x, dtype=torch.bool)
    full = _logits(model, x, attention_mask=attention.block_causal_mask(valid, block_size))
    first_mask = torch.ones(1, 1, block_size, block_size, dtype=torch.bool)
    second_mask = torch.ones(1, 1, block_size, 2 * block_size, dtype=torch.bool)
    positions = torch.arange(2 * block_size)[None]
    with torch.no_grad():
        out1 = model(x[:, :block_size], attention_mask=first_mask,
                     position_ids=positions[:, :block_size], use_cache=True)  # fmt: skip
        out2 = model(x[:, block_size:], attention_mask=second_mask,
                     position_ids=positions[:, block_size:],
                     past_key_values=out1.past_key_values, use_cache=True)  # fmt: skip
    cached = torch.cat([out1.logits, out2.logits], dim=1)
    diff = max_diff(cached, full)
    return ContractResult("staircase KV-cache equivalence", diff <= atol, diff, atol)


def check_block_isolation(model, seq_len: int = 6, block_size: int = 2, atol: float | None = None):
    """4. Under the BD3LM training mask, x_t block j ignores other x_t blocks and x_0 blocks >= j.

    A positive control checks that clean blocks < j do change them.
    """
    atol = tolerance(model) if atol is None else atol
    xt, x0 = _ids(model, 2, seq_len, seed=4)
    xt, x0 = xt[None], x0[None]  # (1, L)
    vocab = _vocab(model)

    def xt_logits(xt_, x0_):
        ids, pos, mask = blocks.bd3lm_inputs(xt_, x0_, block_size)  # (1, 2L), (1, 2L), (1,1,2L,2L)
        return _logits(model, ids, position_ids=pos, attention_mask=mask)[:, :seq_len]

    base = xt_logits(xt, x0)
    worst, leak_control = 0.0, 0.0
    for j in range(seq_len // block_size):
        blk = slice(j * block_size, (j + 1) * block_size)
        xt2, x02 = xt.clone(), x0.clone()
        xt2[:, : j * block_size] = _bump(xt[:, : j * block_size], vocab)  # noisy blocks before j
        xt2[:, (j + 1) * block_size :] = _bump(xt[:, (j + 1) * block_size :], vocab)  # and after
        x02[:, j * block_size :] = _bump(x0[:, j * block_size :], vocab)  # clean blocks >= j
        worst = max(worst, max_diff(xt_logits(xt2, x02)[:, blk], base[:, blk]))
        if j > 0:  # positive control: clean blocks < j must matter
            x03 = x0.clone()
            x03[:, : j * block_size] = _bump(x0[:, : j * block_size], vocab)
            leak_control = max(leak_control, max_diff(xt_logits(xt, x03)[:, blk], base[:, blk]))
    passed = worst <= atol and leak_control > atol
    detail = f"clean earlier blocks change the logits by {leak_control:.3g} (must be > {atol:g})"
    return ContractResult("block isolation", passed, worst, atol, detail)


def as_dtype(model, dtype: torch.dtype | None):
    """``model`` itself if it already has ``dtype`` (or dtype is None), else an eval-mode copy."""
    if dtype is None or model.dtype == dtype:
        return model.eval()
    return copy.deepcopy(model).to(dtype).eval()


def run_contract(
    model, source=None, bd3lm: bool = True, dtype: torch.dtype | None = torch.float64
) -> list[ContractResult]:
    """Every contract check on one model, on a ``dtype`` copy (``None``: the model's own dtype).

    Args:
        source: the causal AR model it came from (optional): it must stay causal at every layer.
        bd3lm: False skips the two block-diffusion checks (3 and 4).
    """
    model = as_dtype(model, dtype)
    source = as_dtype(source, dtype) if source is not None else None
    results = [check_padding_invariance(model), check_future_affects_past(model, source)]
    if bd3lm:
        results += [check_staircase_kv_cache(model), check_block_isolation(model)]
    return results
