"""Sliding-window contract: a token farther than the window never reaches a sliding layer's output.

Checked on the layer alone (its inputs recorded in a real forward, then re-run with far tokens'
hidden states changed), under the MDLM mask and the BD3LM staircase over ``[x_t ; x_0]``, with a
positive control inside the window so the check cannot pass vacuously.
References: BD3LM arXiv 2503.09573 (§3.2 staircase mask); Gemma 2 (local/global layers).
"""

from __future__ import annotations

import torch

from a2dkit.contract.probes import decoder_layers
from a2dkit.contract.result import ContractResult
from a2dkit.diffusion import blocks
from a2dkit.models import families


def _first_sliding_layer(model) -> int | None:
    kinds = families.layer_kinds(model.config)
    return kinds.index(families.SLIDING) if families.SLIDING in kinds else None


def _record_inputs(layer, model, **inputs):
    """Run ``model(**inputs)`` and return the (args, kwargs) the layer was called with."""
    seen = {}

    def hook(_module, args, kwargs):
        seen.setdefault("call", (args, dict(kwargs)))

    handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs, use_cache=False)
    finally:
        handle.remove()
    return seen["call"]


def _rerun(layer, call, change: slice | list[int]) -> torch.Tensor:
    """The layer's output after adding 1 to the hidden states of positions ``change``."""
    args, kwargs = call
    hidden = args[0] if args else kwargs["hidden_states"]
    hidden = hidden.clone()  # a random change (a constant shift would vanish in a LayerNorm)
    gen = torch.Generator().manual_seed(8)
    # positions are the next-to-last axis: (B, L, D), or (K, B, L, D) for AltUp streams (gemma3n)
    noise = torch.randn(hidden[..., change, :].shape, generator=gen, dtype=hidden.dtype)
    hidden[..., change, :] += noise
    args, kwargs = (
        ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hidden})
    )
    with torch.no_grad():
        out = layer(*args, **kwargs)
    return out[0] if isinstance(out, tuple) else out  # (B, L, D) or (K, B, L, D)


def _far_and_near(layer, call, query: int, far: list[int], near: int) -> tuple[float, float]:
    base = _rerun(layer, call, [])[..., query, :]
    far_change = (_rerun(layer, call, far)[..., query, :] - base).abs().max().item()
    near_change = (_rerun(layer, call, [near])[..., query, :] - base).abs().max().item()
    return far_change, near_change


def check_sliding_window(model, atol: float = 1e-6, control: float = 1e-4) -> ContractResult:
    """5. Keys farther than the window leave a sliding layer's output unchanged (MDLM and BD3LM).

    Distances are measured in positions: ``|pos_q - pos_k| < window`` is inside.
    """
    window = families.sliding_window(model.config)
    index = _first_sliding_layer(model)
    if window is None or index is None:
        return ContractResult("sliding window", True, 0.0, atol, "no sliding layers")
    layer = decoder_layers(model)[index]
    seq_len, block = 3 * window, max(1, window // 2)
    seq_len += (-seq_len) % block
    vocab = model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(0, vocab, (1, seq_len), generator=gen)  # (1, L)
    # MDLM: query 0 sees positions < window only, in both directions
    mdlm = _record_inputs(layer, model, input_ids=x)
    far = list(range(window, seq_len))
    m_far, m_near = _far_and_near(layer, mdlm, 0, far, window - 1)
    # BD3LM: x_t's last position q sees clean blocks before its own; those >= window back are out
    ids, pos, mask = blocks.bd3lm_inputs(x, x.flip(-1), block)  # (1, 2L), (1, 2L), (1, 1, 2L, 2L)
    bd3 = _record_inputs(layer, model, input_ids=ids, position_ids=pos, attention_mask=mask)
    q = seq_len - 1
    b_far, b_near = _far_and_near(layer, bd3, q, [seq_len + k for k in range(q - window + 1)],
                                  seq_len + q - window + 1)  # fmt: skip
    worst, weakest = max(m_far, b_far), min(m_near, b_near)
    detail = (
        f"layer {index}, window {window}: far keys change it by {m_far:.3g} (MDLM) / {b_far:.3g} "
        f"(BD3LM); the nearest out-of-block key inside the window by {m_near:.3g} / {b_near:.3g} "
        f"(must be > {control:g})"
    )
    return ContractResult(
        "sliding window", worst <= atol and weakest > control, worst, atol, detail
    )
