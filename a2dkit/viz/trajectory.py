"""Denoising trajectories: the ipywidgets viewer, a static plot and a GIF.

Reads ``SamplerOutput.history`` only and never samples; ipywidgets/matplotlib are imported lazily.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992 (remasking).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping
from typing import Any

import torch

from a2dkit.viz import player
from a2dkit.viz.widgets import PlayerView, new_axes

__all__ = ["DenoisingViewer", "animate", "commit_steps", "plot_trajectory"]

CMAP = "viridis"  # colour = step at which a token was committed
MASK_BOX, MASK_BG, PROMPT_BG = "▒", "#bdbdbd", "#eeeeee"
_NEW = "outline:2px solid #d62728;"  # marks tokens committed at the shown step
_CELL = "font-family:monospace;white-space:pre;padding:1px 3px;margin:1px;border-radius:3px;"


def _as_canvases(history: Any, mask_token_id: int) -> torch.Tensor:
    """(B, T) canvases or a SamplerOutput -> (S, B, T); short canvases right-padded with masks."""
    steps = getattr(history, "history", history)
    if steps is None or len(steps) == 0:
        raise ValueError("history is empty or None; sample with return_history=True")
    steps = [torch.as_tensor(h).long().cpu() for h in steps]
    if any(h.dim() != 2 for h in steps) or len({h.shape[0] for h in steps}) != 1:
        shapes = sorted({tuple(h.shape) for h in steps})
        raise ValueError(f"history must hold (B, T) canvases with one batch size B; got {shapes}")
    width = max(h.shape[1] for h in steps)  # BD3LM canvases may grow block by block
    pad = torch.nn.functional.pad
    return torch.stack([pad(h, (0, width - h.shape[1]), value=mask_token_id) for h in steps])


def commit_steps(history: Any, mask_token_id: int) -> torch.Tensor:
    """Step at which each position was committed (unmasked for good).

    Args:
        history: list of (B, T) long canvases (the first all-mask) or a ``SamplerOutput``.
        mask_token_id: the id that marks a masked position.

    Returns:
        (B, T) long: -1 where never masked (prompt), ``len(history)`` where still masked at the
        end, otherwise 1 + the last step at which the position was masked.
    """
    canvases = _as_canvases(history, mask_token_id)  # (S, B, T)
    steps = torch.arange(canvases.shape[0]).view(-1, 1, 1)  # (S, 1, 1)
    last_masked = torch.where(canvases == mask_token_id, steps, -1).amax(0)  # (B, T)
    return torch.where(last_masked < 0, last_masked, last_masked + 1)


@functools.cache
def _step_color(commit: int, num_steps: int) -> tuple[str, str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    frac = min(max((commit - 1) / max(num_steps - 2, 1), 0.0), 1.0)  # Normalize(1, S - 1)
    r, g, b, _ = colormaps[CMAP](frac)
    return to_hex((r, g, b)), ("#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "#ffffff")


def _legend(num_steps: int) -> str:
    stops = ",".join(_step_color(c, num_steps)[0] for c in [1, *range(1, max(num_steps, 2))])
    bar = f"display:inline-block;width:160px;height:10px;background:linear-gradient(90deg,{stops})"
    return (
        f'<div style="font-size:smaller;margin-top:4px">committed at step 1 <span style="{bar}">'
        f'</span> {max(num_steps - 1, 1)} &nbsp; <span style="{_CELL}background:{MASK_BG}">'
        f'{MASK_BOX}</span> = mask &nbsp; <span style="{_CELL}{_NEW}">new</span> = this step</div>'
    )


def _visible(text: str) -> str:
    """Token text with control characters escaped (``\\n``, ``\\x03``); ∅ for the empty string."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) or "∅"


class _Trajectory:
    """One history: canvases (S, B, T), commit steps (B, T), prompt flags (B, T), token texts."""

    def __init__(self, history, tokenizer, prompt_len=None, title=None, mask_token_id=None, row=0):
        mid = getattr(tokenizer, "mask_token_id", None) if mask_token_id is None else mask_token_id
        if mid is None:
            raise ValueError("tokenizer has no mask_token_id; pass mask_token_id=<id of the mask>")
        self.title, self.mask_token_id = title, int(mid)
        self.canvases = _as_canvases(history, self.mask_token_id)  # (S, B, T)
        self.num_steps, self.num_rows, self.width = self.canvases.shape
        self.commits = commit_steps(self.canvases, self.mask_token_id)  # (B, T)
        self.prompt = self._prompt_flags(prompt_len)  # (B, T) bool
        if not 0 <= row < self.num_rows:
            raise ValueError(f"row={row} out of range; valid rows 0..{self.num_rows - 1}")
        self.pad_token_id = getattr(tokenizer, "pad_token_id", None)
        ids = self.canvases.flatten().bincount().nonzero().flatten().tolist()  # distinct ids
        self.texts = {i: _visible(tokenizer.decode([i], skip_special_tokens=False)) for i in ids}

    def _prompt_flags(self, prompt_len) -> torch.Tensor:
        if prompt_len is None:
            return self.commits < 0
        lens = [prompt_len] * self.num_rows if isinstance(prompt_len, int) else list(prompt_len)
        if len(lens) != self.num_rows or any(not 0 <= n <= self.width for n in lens):
            valid = f"an int or {self.num_rows} ints in [0, {self.width}]"
            raise ValueError(f"prompt_len={prompt_len} must be {valid}")
        return torch.arange(self.width)[None, :] < torch.tensor(lens)[:, None]  # (B, T)

    def cell(self, step: int, row: int, pos: int) -> tuple[str, str, str, str]:
        """(kind, text, background, foreground) of one position; kind in mask/pad/prompt/token."""
        token = int(self.canvases[step, row, pos])
        if token == self.mask_token_id:
            return "mask", MASK_BOX, MASK_BG, "#666666"
        if self.prompt[row, pos]:
            kind = "pad" if token == self.pad_token_id else "prompt"
            return kind, self.texts[token], PROMPT_BG, "#333333"
        bg, fg = _step_color(int(self.commits[row, pos]), self.num_steps)
        return "token", self.texts[token], bg, fg

    def caption(self, step: int, row: int) -> str:
        left = int((self.canvases[step, row] == self.mask_token_id).sum())
        return f"step {step}/{self.num_steps - 1} · row {row} · {left} masks remaining"

    def _span(self, step: int, row: int, pos: int) -> str:
        kind, text, bg, fg = self.cell(step, row, pos)
        if kind == "pad":
            return ""  # left padding is not part of the text
        was_masked = self.canvases[max(step - 1, 0), row, pos] == self.mask_token_id
        fresh = kind == "token" and step > 0 and was_masked  # committed at this very step
        style = f"{_CELL}background:{bg};color:{fg};" + (_NEW if fresh else "")
        c = self.commits[row, pos]
        tip = f"pos {pos}, committed at step {c}" if kind == "token" else f"pos {pos}, {kind}"
        return f'<span class="a2d-{kind}" title="{tip}" style="{style}">{html.escape(text)}</span>'

    def legend(self) -> str:
        return _legend(self.num_steps)

    def render(self, step: int, row: int) -> str:
        title = f"<b>{html.escape(self.title)}</b> · " if self.title else ""
        spans = "".join(self._span(step, row, pos) for pos in range(self.width))
        caption = f'<div class="a2d-caption">{title}{self.caption(step, row)}</div>'
        return caption + f"{player.TOKENS_OPEN}{spans}</div>" + self.legend()


class DenoisingViewer(PlayerView):
    """A sampler's ``history`` step by step: play/step slider, row selector, coloured tokens.

    One object, two views: JupyterLab shows the live ipywidgets view (``.widget``); a static page
    (the book, nbconvert) shows ``to_html()``, the same frames played by plain JavaScript.

    Args:
        history: list of (B, T) long canvases, or a ``SamplerOutput``.
        tokenizer: decodes ids; its ``mask_token_id`` marks masks (or pass ``mask_token_id``).
        prompt_len: int or per-row ints: leading positions drawn as prompt (default: never masked).
        title: heading shown above the tokens.
    """

    def __init__(self, history, tokenizer, *, prompt_len=None, title=None, mask_token_id=None):
        self._init([_Trajectory(history, tokenizer, prompt_len, title, mask_token_id)])

    @classmethod
    def side_by_side(cls, panels: Mapping[str, tuple[Any, Any]], **kwargs) -> DenoisingViewer:
        """``{name: (history, tokenizer)}`` on one slider (short ones clamp); kwargs as __init__."""
        if not panels:
            raise ValueError("panels is empty; pass e.g. {'MDLM': (history, tokenizer)}")
        viewer = cls.__new__(cls)
        viewer._init([_Trajectory(h, tok, title=k, **kwargs) for k, (h, tok) in panels.items()])
        return viewer

    def _init(self, panels: list[_Trajectory]) -> None:
        import ipywidgets as widgets

        self.panels = panels
        self.num_steps = max(p.num_steps for p in panels)  # shorter panels clamp at their end
        self.num_rows = min(p.num_rows for p in panels)
        self.slider = widgets.IntSlider(value=0, min=0, max=self.num_steps - 1, description="step")
        self.play = widgets.Play(value=0, min=0, max=self.num_steps - 1, interval=400)
        self.link = widgets.link((self.play, "value"), (self.slider, "value"))
        self.row_selector = widgets.Dropdown(options=range(self.num_rows), description="row")
        self.row_selector.layout.display = "none" if self.num_rows == 1 else None
        self.html = widgets.HTML(self.render(0, 0))
        for control in (self.slider, self.row_selector):
            control.observe(self._refresh, names="value")
        controls = widgets.HBox([self.play, self.slider, self.row_selector])
        self.widget = widgets.VBox([controls, self.html])

    def _refresh(self, change=None) -> None:
        self.html.value = self.render(self.slider.value, self.row_selector.value)

    def render(self, step: int, row: int = 0) -> str:
        """Pure: HTML of every panel at ``step`` (each clamped to its last step) for ``row``."""
        if not 0 <= step < self.num_steps or not 0 <= row < self.num_rows:
            valid = f"steps 0..{self.num_steps - 1}, rows 0..{self.num_rows - 1}"
            raise ValueError(f"step={step}, row={row} out of range; valid {valid}")
        cells = [p.render(min(step, p.num_steps - 1), row) for p in self.panels]
        body = "".join(f"{player.PANEL_OPEN}{c}</div>" for c in cells)
        return f"{player.VIEWER_OPEN}{body}</div>"

    def to_html(self, interval_ms: int = 400) -> str:
        """The viewer as one self-contained HTML+JavaScript element: plays with no kernel."""
        return player.player_html(self.panels, self.num_steps, self.num_rows, interval_ms)


def plot_trajectory(history, tokenizer, row: int = 0, ax=None, *, mask_token_id=None):
    """Static step × position image: colour = committed step, grey = masked, white = prompt.

    Args:
        history, tokenizer, mask_token_id: as for ``DenoisingViewer``; row: batch row to draw.

    Returns:
        The matplotlib Figure; its image is (S, T) ``commit_steps`` masked where the canvas is.
    """
    import numpy as np
    from matplotlib import colormaps, ticker

    traj = _Trajectory(history, tokenizer, mask_token_id=mask_token_id, row=row)
    canvases, commits = traj.canvases[:, row].numpy(), traj.commits[row].numpy()  # (S, T), (T,)
    masked = canvases == traj.mask_token_id  # (S, T)
    data = np.ma.masked_where(masked, np.broadcast_to(commits, canvases.shape))  # (S, T)
    size = (min(max(6, traj.width / 4), 16), min(max(3, traj.num_steps / 5), 10))  # inches
    fig, ax = new_axes(ax, figsize=size)
    cmap = colormaps[CMAP].with_extremes(bad=MASK_BG, under="white")
    norm = {"vmin": 1, "vmax": max(traj.num_steps - 1, 1)}  # as _step_color: Normalize(1, S - 1)
    image = ax.imshow(data, cmap=cmap, **norm, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="committed at step", ticks=ticker.MaxNLocator(integer=True))
    ax.set(xlabel="position", ylabel="step")
    if traj.width <= 64:  # the final text along the x axis
        ax.set_xticks(range(traj.width), [traj.texts[int(t)] for t in canvases[-1]], rotation=90)
    return fig


def animate(history, tokenizer, row: int = 0, path=None, fps: int = 4, *, mask_token_id=None):
    """Animated token grid (16 cells a line), one frame per canvas in ``history``.

    Args:
        history, tokenizer, mask_token_id: as for ``DenoisingViewer``; row: batch row to draw.
        path: if given, save a GIF there (Pillow writer) at ``fps`` frames per second.

    Returns:
        ``matplotlib.animation.FuncAnimation`` (``.to_jshtml()`` embeds it in the book).
    """
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.patches import Rectangle

    traj = _Trajectory(history, tokenizer, mask_token_id=mask_token_id, row=row)
    columns, lines = 16, -(-traj.width // 16)  # ceil
    fig, ax = new_axes(None, figsize=(0.65 * columns, 0.45 * lines + 0.7))
    ax.set(xlim=(0, columns), ylim=(lines, 0), frame_on=False, xticks=[], yticks=[])
    cells = [(pos % columns, pos // columns) for pos in range(traj.width)]  # (x, y) per position
    boxes = [ax.add_patch(Rectangle((x + 0.04, y + 0.08), 0.92, 0.84, lw=0)) for x, y in cells]
    centered = {"ha": "center", "va": "center", "parse_math": False}
    labels = [ax.text(x + 0.5, y + 0.5, "", **centered) for x, y in cells]

    def draw(step: int):
        for pos, (box, label) in enumerate(zip(boxes, labels, strict=True)):
            kind, text, bg, fg = traj.cell(step, row, pos)
            box.set_facecolor("white" if kind == "pad" else bg)
            label.set(text="" if kind == "pad" else text[:6], color=fg)
        ax.set_title(traj.caption(step, row))
        return [*boxes, *labels]

    anim = FuncAnimation(fig, draw, frames=traj.num_steps, interval=1000 / fps, blit=False)
    if path is not None:
        anim.save(str(path), writer=PillowWriter(fps=fps))
    return anim
