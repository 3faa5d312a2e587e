"""The conversion gate for any family: the contract in float64 on a tiny random instance.

``gate_family(config)`` shrinks a config of the family (hidden 64, 2 layers, small window),
builds the AR model and its A2D conversion with the same random weights, and runs the identity gate
plus every contract check. A family converts iff every check passes; otherwise the refusal names
the failing check and its number.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2).
"""

from __future__ import annotations

import json

import torch
from transformers import PretrainedConfig

from a2dkit.contract import checks
from a2dkit.contract.result import ContractResult
from a2dkit.contract.window import check_sliding_window
from a2dkit.diffusion import attention
from a2dkit.models import families
from a2dkit.models.forward import a2d_cache
from a2dkit.models.registry import to_a2d_model

# tiny dimensions, by the standard attribute names (configs map them through attribute_map)
TINY_DIMS = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "intermediate_size": 128,
    "vocab_size": 128,
    "max_position_embeddings": 64,
}
# MoE / MLA knobs, set only where the config has them
TINY_EXTRA = {
    "moe_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "q_lora_rank": 32,
    "kv_lora_rank": 16,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 16,
    "ffn_hidden_size": 128,
    "n_inner": 128,
    "decoder_sparse_step": 1,
    "moe_num_experts": 4,
    "num_kv_shared_layers": 0,
}
# MoE counts a default config may leave None (dots1): set, so the experts exist
TINY_MOE_COUNTS = {"n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1}
TINY_WINDOW = 4
# Per-family config kwargs the generic shrink cannot derive, applied last (nested dicts merge).
FAMILY_OVERRIDES: dict[str, dict] = {
    # DbrxAttention reads attn_config.rope_theta, which transformers 5.23's DbrxAttentionConfig
    # does not define (real checkpoints carry it in attn_config; the rotary itself reads
    # rope_parameters); its default clip_qkv=None reaches torch.clamp(min=None, max=None), which
    # raises, so clip at 8 as dbrx-instruct does; kv_n_heads is dbrx's nested num_key_value_heads,
    # moe_top_k its top-k.
    "dbrx": {
        "attn_config": {"rope_theta": 10_000.0, "clip_qkv": 8.0, "kv_n_heads": 2},
        "ffn_config": {"moe_top_k": 2},
    },
    "gemma3n_text": {
        # the per-layer embedding table is vocab_size_per_layer_input x (layers * 256): 262144
        # rows (~1 GB in float64) shrink to the tiny vocab, so every token has its own row
        "vocab_size_per_layer_input": TINY_DIMS["vocab_size"],
        "hidden_size_per_layer_input": 16,
        "laurel_rank": 8,  # LAuReL low-rank residual, rank 64 > hidden 64
        # four layers so that KV sharing runs: the last two reuse the K/V of the last layer of
        # their type before them (kv_sharing_modes needs a producer of each type)
        "num_hidden_layers": 4,
        "layer_types": ["sliding_attention", "full_attention"] * 2,
        "num_kv_shared_layers": 2,
        # one activation-sparse (Gaussian top-k) layer of each attention type, then dense ones
        "activation_sparsity_pattern": [0.95, 0.95, 0.0, 0.0],
    },
}
# float64 thresholds: a right conversion is exact to rounding, a wrong one is off by O(1e-2)
# (a few families keep routers or rotary tables in float32: their exact checks land near 1e-7)
EXACT, CHANGED = 1e-6, 1e-4


def shrink_config(config: PretrainedConfig, window: int = TINY_WINDOW) -> PretrainedConfig:
    """A hidden-64, 2-layer config of the same class, keeping its structural options."""
    cls = type(config)
    drop = ("architectures", "auto_map", "model_type", "transformers_version")
    values = {k: v for k, v in config.to_dict().items() if k not in drop}
    amap = getattr(cls, "attribute_map", {})
    for name, value in {**TINY_DIMS, **TINY_EXTRA}.items():
        key = amap.get(name, name)
        if key in values and (name in TINY_DIMS or values[key] is not None):
            values[key] = value
    _tiny_heads(values, amap)
    for key, small in (("pad_token_id", 0), ("bos_token_id", 1), ("eos_token_id", 2)):
        if isinstance(values.get(key), int) and values[key] >= TINY_DIMS["vocab_size"]:
            values[key] = small
        elif isinstance(values.get(key), list):
            values[key] = [2]
    if any(values.get(k, 0) is None for k in TINY_MOE_COUNTS):
        values.update({k: v for k, v in TINY_MOE_COUNTS.items() if k in values})
    for sub in getattr(cls, "sub_configs", None) or {}:  # nested configs (dbrx attn/ffn)
        if isinstance(values.get(sub), dict):
            nested = values[sub]
            nested.update({k: v for k, v in {**TINY_DIMS, **TINY_EXTRA}.items() if k in nested})
    _tiny_layer_lists(values, config.num_hidden_layers)
    if families.sliding_window(config) is not None:
        values["sliding_window"] = window
    _merge(values, FAMILY_OVERRIDES.get(config.model_type, {}))
    return cls(**values)


def _merge(values: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value


def _tiny_heads(values: dict, amap: dict) -> None:
    """Head dims that other options derive from (MLA latent heads, partial rotary)."""
    if values.get("qk_rope_head_dim") is not None:  # MLA: the rotary head dim is qk_rope_head_dim
        values["head_dim"] = values["qk_rope_head_dim"]
        if "qk_head_dim" in values:
            values["qk_head_dim"] = values["qk_rope_head_dim"] + values["qk_nope_head_dim"]
    if values.get("kv_lora_rank") is not None:  # MLA: one latent KV per query head
        kv_heads = amap.get("num_key_value_heads", "num_key_value_heads")
        values[kv_heads] = TINY_DIMS["num_attention_heads"]
    if values.get("rotary_dim") is not None:
        values["rotary_dim"] = 8


def _tiny_layer_lists(values: dict, layers: int) -> None:
    """Per-layer lists shrink to two layers, one of each kind (sliding first for layer_types)."""
    if layers == 2:
        return
    for key, value in list(values.items()):
        if not isinstance(value, list) or len(value) != layers:
            continue
        keys = [_hashable(v) for v in value]
        order = sorted(keys, key=lambda k: k != families.SLIDING) if key == "layer_types" else keys
        kept = list(dict.fromkeys(order))[:2]
        values[key] = [value[keys.index(k)] for k in (kept * 2)[:2]]


def tiny_pair(config: PretrainedConfig, attn: str = "sdpa", seed: int = 0):
    """(AR source, A2D model): float64, eval mode, the same random weights."""
    _, lm_cls = families.source_classes(config.model_type)
    tiny = shrink_config(config)
    tiny._attn_implementation = attn
    tiny._experts_implementation = "eager"  # grouped_mm kernels have no float64
    torch.manual_seed(seed)
    source = lm_cls(tiny).to(torch.float64).eval()
    return source, to_a2d_model(source).eval()


def _hashable(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def _fwd(model, ids, **kwargs):
    with torch.no_grad():
        return model(ids, **kwargs, use_cache=False)


def check_identity(source, a2d, seq_len: int = 12) -> ContractResult:
    """0. Driven with an explicit causal mask, the A2D model reproduces the AR logits."""
    ids = torch.randint(0, source.config.vocab_size, (2, seq_len), generator=_gen(0))
    causal = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))[None, None]
    ref = _fwd(source, ids).logits
    out = _fwd(a2d, ids, attention_mask=causal.expand(2, -1, -1, -1)).logits[..., : ref.shape[-1]]
    diff = (out - ref).abs().max().item()
    return ContractResult("identity gate", diff <= EXACT, diff, EXACT)


def check_future_every_layer(source, a2d, seq_len: int = 6) -> ContractResult:
    """2'. Changing token 2 changes the hidden state at position 1 after *every* layer."""
    ids = torch.randint(0, source.config.vocab_size, (1, seq_len), generator=_gen(2))
    bumped = ids.clone()
    bumped[0, 2] = (bumped[0, 2] + 1) % source.config.vocab_size

    def changes(model):
        a = _fwd(model, ids, output_hidden_states=True).hidden_states[1:]
        b = _fwd(model, bumped, output_hidden_states=True).hidden_states[1:]
        # position 1 of (1, L, D), or of (K, 1, L, D) where layers pass K AltUp streams (gemma3n)
        return [(x[..., 1, :] - y[..., 1, :]).abs().max().item() for x, y in zip(a, b, strict=True)]

    ours, theirs = changes(a2d), max(changes(source))
    weakest = min(ours)
    passed = weakest > CHANGED and theirs <= EXACT
    detail = f"per layer {', '.join(f'{c:.3g}' for c in ours)}; source AR model {theirs:.3g}"
    return ContractResult("future affects past (every layer)", passed, weakest, CHANGED, detail)


def check_mask_paths(a2d, seq_len: int = 10) -> ContractResult:
    """6. The 2-D (MDLM) path equals an explicit all-ones 4-D mask (one architecture for both)."""
    ids = torch.randint(0, a2d.config.vocab_size, (1, seq_len), generator=_gen(6))
    ones = torch.ones(1, 1, seq_len, seq_len, dtype=torch.bool)
    diff = (_fwd(a2d, ids).logits - _fwd(a2d, ids, attention_mask=ones).logits).abs().max().item()
    return ContractResult("2-D and 4-D masks agree", diff <= EXACT, diff, EXACT)


def check_cache_rewind(a2d, block: int = 3) -> ContractResult:
    """7. BD3LM sampler's cache use: a step's block is appended, cropped, run again: same logits."""
    ids = torch.randint(0, a2d.config.vocab_size, (1, 3 * block), generator=_gen(7))
    valid = torch.ones_like(ids, dtype=torch.bool)
    mask = attention.block_causal_mask(valid, block)  # (1, 1, 3b, 3b)
    pos = torch.arange(3 * block)[None]
    cache = a2d_cache(a2d.config)

    def step(s, e):
        with torch.no_grad():
            return a2d(ids[:, s:e], attention_mask=mask[:, :, s:e, :e], position_ids=pos[:, s:e],
                       past_key_values=cache, use_cache=True).logits  # fmt: skip

    step(0, 2 * block)
    first = step(2 * block, 3 * block)
    cache.crop(-block)
    again = step(2 * block, 3 * block)
    full = _fwd(a2d, ids, attention_mask=mask).logits[:, 2 * block :]
    diff = max((again - first).abs().max().item(), (again - full).abs().max().item())
    return ContractResult("KV-cache rewind", diff <= EXACT, diff, EXACT)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def run_generic_contract(source, a2d) -> list[ContractResult]:
    """Identity gate + the contract (float64 thresholds) + window, mask-path and rewind checks."""
    return [
        check_identity(source, a2d),
        checks.check_padding_invariance(a2d, atol=EXACT),
        check_future_every_layer(source, a2d),
        checks.check_staircase_kv_cache(a2d, atol=EXACT),
        checks.check_block_isolation(a2d, atol=EXACT),
        check_sliding_window(a2d, atol=EXACT),
        check_mask_paths(a2d),
        check_cache_rewind(a2d),
    ]


def gate_family(config: PretrainedConfig, attns=("sdpa", "eager")) -> dict[str, list]:
    """{attn implementation: contract results} on a tiny random instance of ``config``'s family."""
    return {attn: run_generic_contract(*tiny_pair(config, attn)) for attn in attns}


def first_failure(results: dict[str, list]) -> str | None:
    """``"<attn>: <check> <value> (threshold t)"`` for the first failing check, else None."""
    for attn, rows in results.items():
        for r in rows:
            if not r.passed:
                return f"{attn}: {r.name} = {r.value:.3g} (threshold {r.threshold:g}) {r.detail}"
    return None
