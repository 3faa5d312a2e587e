"""Layer-wise learning rates: parameter groups whose learning rate is the base rate times a
multiplier chosen by parameter name (RND1: a faster rate where the conversion must change the
model, a slower one where the AR model's knowledge lives).

``--lr_multipliers "mlp=0.1,embed_tokens=0.1"``: a parameter whose name contains ``mlp`` trains at
0.1 x the learning rate (the first pattern that matches wins; unmatched parameters at 1 x). The
scheduler scales every group alike, so the ratios hold for the whole run, and the groups are
saved with the optimizer state, so resume is exact.
Reference: RND1, "Training Diffusion Language Models at Scale using Autoregressive Models"
(Radical Numerics 2025, layer-specific learning rates).
"""

from __future__ import annotations

import math

import torch

__all__ = ["parse_lr_multipliers", "lr_param_groups"]


def parse_lr_multipliers(spec: str) -> list[tuple[str, float]]:
    """``"pattern=multiplier,..."`` -> [(pattern, multiplier)]; multipliers finite and >= 0."""
    pairs = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        pattern, sep, value = part.partition("=")
        try:
            multiplier = float(value)
        except ValueError:
            multiplier = math.nan
        if not sep or not pattern.strip() or not (0 <= multiplier < math.inf):
            raise ValueError(
                f"lr_multipliers={spec!r}: {part!r} is not 'NAME_PATTERN=MULTIPLIER' "
                "with a finite multiplier >= 0, e.g. 'mlp=0.1,embed_tokens=0.1'"
            )
        pairs.append((pattern.strip(), multiplier))
    if not pairs:
        raise ValueError(f"lr_multipliers={spec!r} names no pattern, e.g. 'mlp=0.1'")
    return pairs


def lr_param_groups(
    model: torch.nn.Module,
    multipliers: list[tuple[str, float]],
    learning_rate: float,
    weight_decay: float,
    decay_names: set[str],
) -> list[dict]:
    """Optimizer groups: one per (multiplier, decayed or not), trainable parameters only.

    Args:
        multipliers: from ``parse_lr_multipliers``; a pattern that matches no trainable parameter
            is refused (a typo would silently train everything at 1 x).
        decay_names: parameter names that get ``weight_decay`` (the Trainer's choice).
    """
    groups: dict[tuple[float, bool], list] = {}
    used = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        hit = next(((p, m) for p, m in multipliers if p in name), None)
        used.update([hit[0]] if hit else [])
        key = (hit[1] if hit else 1.0, name in decay_names)
        groups.setdefault(key, []).append(param)
    unused = [p for p, _ in multipliers if p not in used]
    if unused:
        raise ValueError(
            f"lr_multipliers: {unused} match no trainable parameter name (e.g. "
            f"{next(n for n, _ in model.named_parameters())!r})"
        )
    return [
        {"params": ps, "lr": learning_rate * mult, "weight_decay": weight_decay if decay else 0.0}
        for (mult, decay), ps in sorted(groups.items())
    ]
