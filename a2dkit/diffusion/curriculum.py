"""Block-size curricula for block diffusion: the block size BD3LM trains with at each step.

``"4:100,8:200,16"`` trains blocks of 4 for steps [0, 100), 8 for [100, 200), then 16 (NBDiff grows
1 -> B; Uno 2 -> 16; I-DLM's stride 2 -> 3). Two presets are resolved against the run's length:
``"grow"`` doubles from 1 up to ``block_size`` over the first half of training; ``"wsd"`` is
LLaDA2.0's warmup-stable-decay (arXiv 2512.15745 §3.1): blocks double from 1 up to the whole row
(MDLM), stay there, then halve back down to ``block_size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PRESETS", "BlockSchedule", "parse_block_schedule"]

PRESETS = ("grow", "wsd")
_WSD = (0.25, 0.25, 0.5)  # warmup, stable, decay: shares of the run's steps


@dataclass(frozen=True)
class BlockSchedule:
    """Stages ``(block_size, end_step)``; each holds until its (exclusive) end, the last forever."""

    stages: tuple[tuple[int, int | None], ...]

    def at(self, step: int) -> int:
        """The block size of optimizer step ``step`` (0-based)."""
        for size, end in self.stages:
            if end is None or step < end:
                return size
        return self.stages[-1][0]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(size for size, _ in self.stages)

    @property
    def final(self) -> int:
        """The block size training ends with (what sampling should use)."""
        return self.stages[-1][0]

    @property
    def multiple(self) -> int:
        """The least common multiple of every size (batch lengths must be multiples of it)."""
        return math.lcm(*self.sizes)

    def to_list(self) -> list[list[int | None]]:
        return [[size, end] for size, end in self.stages]


def _doubling(start: int, stop: int) -> list[int]:
    sizes, size = [], start
    while size < stop:
        sizes.append(size)
        size *= 2
    return sizes


def _spread(sizes: list[int], begin: int, span: int) -> list[tuple[int, int]]:
    """Equal shares of ``span`` steps from ``begin``, one per size (each at least one step)."""
    n = max(len(sizes), 1)
    return [(size, begin + max(span * (i + 1) // n, i + 1)) for i, size in enumerate(sizes)]


def _preset(name: str, block_size: int, max_length: int, total_steps: int) -> list:
    if name == "grow":  # 1, 2, 4, ... < block_size over the first half, then block_size
        return [*_spread(_doubling(1, block_size), 0, total_steps // 2), (block_size, None)]
    warmup, stable, _ = (int(total_steps * share) for share in _WSD)
    fits = [s for s in _doubling(1, max_length) if max_length % s == 0]  # whole blocks only
    up = _spread(fits, 0, warmup)  # LLaDA2.0 WSD: 1 -> the whole row
    down = [s for s in fits if s > block_size][::-1]  # back down, halving, to block_size
    decay_begin = warmup + stable
    down = _spread(down, decay_begin, (total_steps - decay_begin) // 2) if down else []
    return [*up, (max_length, decay_begin), *down, (block_size, None)]


def _parse_stages(spec: str) -> list[tuple[int, int | None]]:
    stages = []
    for i, part in enumerate(p.strip() for p in spec.split(",")):
        size, _, end = part.partition(":")
        try:
            stages.append((int(size), int(end) if end else None))
        except ValueError:
            raise ValueError(
                f"block_size_schedule={spec!r}: stage {i + 1} ({part!r}) is not "
                "'SIZE:END_STEP' or a last 'SIZE'"
            ) from None
    return stages


def parse_block_schedule(
    spec: str, *, block_size: int, max_length: int, total_steps: int | None = None
) -> BlockSchedule:
    """Parse ``--block_size_schedule``; every size must divide ``max_length`` (whole blocks).

    Args:
        spec: ``"SIZE:END,SIZE:END,...,SIZE"`` (ends strictly increasing) or a preset in PRESETS.
        block_size: the target block size (the presets end with it).
        max_length: the row length every block size must divide.
        total_steps: the run's optimizer steps; needed by the presets (None: a placeholder, so
            a flag can be checked before the run knows its length).
    """
    spec = spec.strip()
    if spec in PRESETS:
        stages = _preset(spec, block_size, max_length, total_steps or 1000)
    else:
        stages = _parse_stages(spec)
        if stages[-1][1] is not None:
            raise ValueError(
                f"block_size_schedule={spec!r} must end with a bare SIZE (the block "
                "size after the last stage), e.g. '4:100,8'"
            )
        ends = [end for _, end in stages[:-1]]  # none: a constant size ("8")
        if None in ends or ends != sorted(set(ends)) or min(ends, default=1) <= 0:
            raise ValueError(
                f"block_size_schedule={spec!r}: every stage but the last needs an "
                "end step, strictly increasing and > 0, e.g. '2:50,4:100,8'"
            )
    for size, _ in stages:
        if size <= 0 or max_length % size:
            raise ValueError(
                f"block_size_schedule={spec!r} has block size {size}, which does not divide "
                f"max_length={max_length}; every block size must (or use a preset {PRESETS})"
            )
    return BlockSchedule(tuple(stages))
