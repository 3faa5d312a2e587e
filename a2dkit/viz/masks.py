"""Attention-mask pictures: heatmaps of the A2D masks and the ``MaskExplorer`` widget.

Re-exported by ``a2dkit.viz``; matplotlib and ipywidgets are imported lazily.
References: BD3LM arXiv 2503.09573 (§3.2, Fig. 2: M_BD, M_OBC, M_BC).
"""

from __future__ import annotations

import io
from typing import Literal

import torch

from a2dkit.diffusion import attention
from a2dkit.viz.widgets import WidgetView, new_axes

__all__ = ["MASK_KINDS", "MaskExplorer", "build_mask", "plot_mask"]

MaskKind = Literal["bidirectional", "block_causal", "staircase"]
MASK_KINDS = ("bidirectional", "block_causal", "staircase")


def build_mask(kind: MaskKind, length: int, block_size: int = 1, num_pad: int = 0) -> torch.Tensor:
    """The a2dkit mask of ``kind`` ((L, L) bool; (2L, 2L) for the staircase, which needs
    ``block_size`` | ``length``), built by ``diffusion.attention``; ``num_pad`` left pads, which no
    query attends to (not for the staircase)."""
    if kind not in MASK_KINDS or length <= 0:
        raise ValueError(f"kind={kind!r}, length={length}: need kind in {MASK_KINDS}, length >= 1")
    if not 0 <= num_pad < length or (num_pad and kind == "staircase"):
        raise ValueError(f"num_pad={num_pad} must be in [0, length={length}), 0 for the staircase")
    if kind == "staircase":
        return attention.staircase_mask(length, block_size)  # (2L, 2L)
    valid = torch.ones(1, length, dtype=torch.bool)  # (1, L)
    valid[:, :num_pad] = False  # left padding
    if kind == "bidirectional":
        return attention.bidirectional_padding_mask(valid)[0, 0]  # (L, L)
    return attention.block_causal_mask(valid, block_size)[0, 0]  # (L, L)


def plot_mask(mask: torch.Tensor, ax=None, title: str | None = None, split: int | None = None):
    """Heatmap Figure of a boolean attention mask (query rows, key columns; dark = may attend).

    Args:
        mask: (L, L) or (2L, 2L) bool; leading singleton batch/head dims are dropped.
        ax: matplotlib Axes to draw into (default: a new figure, which is returned).
        split: draw the x_t | x_0 split lines before this index (``L`` for the staircase).
    """
    from matplotlib.colors import ListedColormap

    mask = torch.as_tensor(mask)
    while mask.dim() > 2 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() != 2:
        raise ValueError(f"mask must be (L, L) or (2L, 2L); got shape {tuple(mask.shape)}")
    (n_q, n_k), cmap = mask.shape, ListedColormap(["#f7f7f7", "#2c7fb8"])
    fig, ax = new_axes(ax, figsize=(4.5, 4.5))
    ax.imshow(mask.to(torch.int8).numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set(xlabel="key", ylabel="query", title=title or "")
    if split is not None:  # BD3LM input [x_t ; x_0]: the noisy half, then the clean half
        ax.axhline(split - 0.5, color="#d62728", linewidth=1.5)
        ax.axvline(split - 0.5, color="#d62728", linewidth=1.5)
        ax.set_xticks([(split - 1) / 2, split + (n_k - split - 1) / 2], ["x_t", "x_0"])
        ax.set_yticks([(split - 1) / 2, split + (n_q - split - 1) / 2], ["x_t", "x_0"])
    return fig


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class MaskExplorer(WidgetView):
    """Heatmaps of the bidirectional, block-causal and staircase masks; block sizes | length."""

    def __init__(self, length: int = 8, block_size: int = 2, kind: MaskKind = "staircase"):
        import ipywidgets as widgets

        if length not in range(1, 33) or block_size not in _divisors(length):
            raise ValueError(
                f"length={length}, block_size={block_size}: need block_size | length <= 32"
            )
        self.kind = widgets.ToggleButtons(options=MASK_KINDS, value=kind, description="mask")
        self.length = widgets.IntSlider(value=length, min=1, max=32, description="length")
        options = _divisors(length)
        self.block_size = widgets.Dropdown(options=options, value=block_size, description="block")
        self.image = widgets.Image(format="png")
        self.length.observe(self._on_length, names="value")
        for control in (self.kind, self.block_size):
            control.observe(self._redraw, names="value")
        self.widget = widgets.VBox(
            [self.kind, widgets.HBox([self.length, self.block_size]), self.image]
        )
        self._redraw()

    def figure(self, kind: MaskKind, length: int, block_size: int):
        """Pure: the heatmap Figure of ``build_mask(kind, length, block_size)``."""
        mask = build_mask(kind, length, block_size)
        title = f"{kind}  L={length}" + ("" if kind == "bidirectional" else f"  block={block_size}")
        return plot_mask(mask, title=title, split=length if kind == "staircase" else None)

    def _on_length(self, change) -> None:
        options = _divisors(change["new"])
        keep = max(d for d in options if d <= self.block_size.value)
        self.block_size.unobserve(self._redraw, names="value")  # redraw once, below
        self.block_size.options, self.block_size.value = options, keep
        self.block_size.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change=None) -> None:
        kind = self.kind.value
        self.block_size.disabled = kind == "bidirectional"
        self.current_figure = self.figure(kind, self.length.value, self.block_size.value)
        buffer = io.BytesIO()
        self.current_figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        self.image.value = buffer.getvalue()
