"""The attention contract: checks that any converted A2D model must pass before it is trained.

Run on your own converted model: python -m a2dkit.testing --model_name_or_path models/a2d/Qwen3-0.6B
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2 staircase mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from a2dkit import attention, losses


@dataclass
class ContractResult:
    """One check: ``value`` is the measured max abs difference, compared with ``threshold``."""

    name: str
    passed: bool
    value: float
    threshold: float
    detail: str = ""


def _logits(model, input_ids, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids, **kwargs).logits.float()  # (B, L, V)


def _ids(model, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, _vocab(model), (batch, seq_len), generator=gen)  # (B, L)


def _vocab(model) -> int:
    return model.get_input_embeddings().weight.shape[0]


def _bump(ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """A different token at every position (wraps inside the vocabulary)."""
    return (ids + 1) % vocab


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def check_padding_invariance(model, seq_len: int = 6, pad: int = 2, atol: float = 1e-4):
    """1. Real-token logits are the same with left/right padding, no mask, batches, mixed rows."""
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
    diffs = {name: _maxdiff(out, ref) for name, out in variants.items()}
    diffs["mixed left/right rows (row 1)"] = _maxdiff(mixed[1, :seq_len], ref_y)
    worst = max(diffs, key=diffs.get)
    return ContractResult("padding invariance", diffs[worst] <= atol, diffs[worst], atol, worst)


def check_future_affects_past(model, source=None, seq_len: int = 6, threshold: float = 1e-3):
    """2. Changing token 2 changes the logits at position 1 (and not in the causal source)."""
    vocab = min(_vocab(model), _vocab(source)) if source is not None else _vocab(model)
    x = _ids(model, 1, seq_len, seed=2) % vocab
    y = x.clone()
    y[0, 2] = _bump(y[0, 2], vocab)
    change = _maxdiff(_logits(model, x)[0, 1], _logits(model, y)[0, 1])
    passed, detail = change > threshold, f"converted model changed by {change:.3g}"
    if source is not None:
        source_change = _maxdiff(_logits(source, x)[0, 1], _logits(source, y)[0, 1])
        passed = passed and source_change <= 1e-6
        detail += f"; source AR model changed by {source_change:.3g}"
    return ContractResult("future affects past", passed, change, threshold, detail)


def check_staircase_kv_cache(model, block_size: int = 3, atol: float = 1e-4):
    """3. Block-causal full forward == block 1 with use_cache=True, then block 2 on that cache."""
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
    cached = torch.cat([out1.logits, out2.logits], dim=1).float()
    diff = _maxdiff(cached, full)
    return ContractResult("staircase KV-cache equivalence", diff <= atol, diff, atol)


def check_block_isolation(model, seq_len: int = 6, block_size: int = 2, atol: float = 1e-5):
    """4. Under the BD3LM training mask, x_t block j ignores other x_t blocks and x_0 blocks >= j.

    A positive control checks that clean blocks < j do change them.
    """
    xt, x0 = _ids(model, 2, seq_len, seed=4)
    xt, x0 = xt[None], x0[None]  # (1, L)
    vocab = _vocab(model)

    def xt_logits(xt_, x0_):
        ids, pos, mask = losses.bd3lm_inputs(xt_, x0_, block_size)  # (1, 2L), (1, 2L), (1,1,2L,2L)
        return _logits(model, ids, position_ids=pos, attention_mask=mask)[:, :seq_len]

    base = xt_logits(xt, x0)
    worst, leak_control = 0.0, 0.0
    for j in range(seq_len // block_size):
        blk = slice(j * block_size, (j + 1) * block_size)
        xt2, x02 = xt.clone(), x0.clone()
        xt2[:, : j * block_size] = _bump(xt[:, : j * block_size], vocab)  # noisy blocks before j
        xt2[:, (j + 1) * block_size :] = _bump(xt[:, (j + 1) * block_size :], vocab)  # and after
        x02[:, j * block_size :] = _bump(x0[:, j * block_size :], vocab)  # clean blocks >= j
        worst = max(worst, _maxdiff(xt_logits(xt2, x02)[:, blk], base[:, blk]))
        if j > 0:  # positive control: clean blocks < j must matter
            x03 = x0.clone()
            x03[:, : j * block_size] = _bump(x0[:, : j * block_size], vocab)
            leak_control = max(leak_control, _maxdiff(xt_logits(xt, x03)[:, blk], base[:, blk]))
    passed = worst <= atol and leak_control > 1e-3
    detail = f"clean earlier blocks change the logits by {leak_control:.3g} (must be > 1e-3)"
    return ContractResult("block isolation", passed, worst, atol, detail)


def run_contract(model, source=None, bd3lm: bool = True) -> list[ContractResult]:
    """Every contract check on one model (``bd3lm=False`` skips the two block-diffusion checks)."""
    model.eval()
    results = [check_padding_invariance(model), check_future_affects_past(model, source)]
    if bd3lm:
        results += [check_staircase_kv_cache(model), check_block_isolation(model)]
    return results


def main(argv: list[str] | None = None) -> int:
    import argparse

    from a2dkit import loading

    parser = argparse.ArgumentParser(description="Run the A2D attention contract on a model.")
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--attn_implementation", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--bd3lm", default="True", choices=["True", "False"])
    for flag in ("--trust_remote_code", "--allow_pickle_weights"):  # off unless asked for
        parser.add_argument(flag, default="False", choices=["True", "False"])
    args = parser.parse_args(argv)
    model, _ = loading.load_model(
        args.model_name_or_path, require_a2d=True, dtype=torch.float32,
        attn_implementation=args.attn_implementation,
        trust_remote_code=args.trust_remote_code == "True",
        allow_pickle_weights=args.allow_pickle_weights == "True",
    )  # fmt: skip
    results = run_contract(model, bd3lm=args.bd3lm == "True")
    for r in results:
        status = "PASS" if r.passed else "FAIL"
        print(f"{status}  {r.name:32s} {r.value:.3g} (threshold {r.threshold:g}) {r.detail}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    from a2dkit.cli.errors import run_cli

    raise SystemExit(run_cli(main))
