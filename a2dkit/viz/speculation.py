"""Speculative decoding, one verifier forward at a time: the drafter's block, the prefix the AR
verifier accepted (green), the drafted tokens it rejected (red, struck through) and its own token
(orange: the correction at the first rejection, or the bonus token after a fully accepted draft).

Reads the ``trace`` of ``a2dkit.samplers.speculative_decode(..., trace=[])`` only and never
decodes; ipywidgets is imported lazily. The live view is an ipywidgets slider; static pages (the
book, nbconvert) get the same frames as a self-contained player (``a2dkit.viz.player``).
References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, Fig. 1); BD3LM
drafters arXiv 2503.09573.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from a2dkit.samplers.speculative import VerifierStep
from a2dkit.viz import player
from a2dkit.viz.trajectory import _CELL, PROMPT_BG, _visible
from a2dkit.viz.widgets import PlayerView

__all__ = ["SPECULATION_COLORS", "SpeculationViewer"]

# kind -> (background of the shown forward, background once committed earlier)
SPECULATION_COLORS = {
    "accepted": ("#74c476", "#e5f5e0"),  # drafted, accepted by the verifier
    "rejected": ("#fb6a4a", "#fb6a4a"),  # drafted, rejected (shown only at its own forward)
    "verifier": ("#fd8d3c", "#fee6ce"),  # the verifier's own token
}
_NOW = "outline:2px solid #333333;font-weight:bold;"
_STRUCK = "text-decoration:line-through;"


class _Speculation:
    """The frames of one trace: frame 0 is the prompt, frame i shows verifier forward i."""

    def __init__(self, trace: Sequence[VerifierStep], tokenizer, prompt=None, title=None):
        if not trace:
            raise ValueError("trace is empty; pass trace=[] to speculative_decode, then decode")
        self.steps, self.title, self.prompt = list(trace), title, list(prompt or [])
        ids = {*self.prompt, *(t for s in self.steps for t in (*s.draft, s.token))}
        self.texts = {i: _visible(tokenizer.decode([i], skip_special_tokens=False)) for i in ids}
        self.frames = [self._frame(i) for i in range(len(self.steps) + 1)]
        self.num_steps, self.num_rows = len(self.frames), 1
        self.width = max(len(f) for f in self.frames)

    def _chip(self, kind: str, token: int, tip: str, now: bool = False) -> str:
        if kind == "prompt":
            style = f"{_CELL}background:{PROMPT_BG};color:#333333;"
        else:
            style = f"{_CELL}background:{SPECULATION_COLORS[kind][0 if now else 1]};color:#000;"
            style += (_NOW if now else "") + (_STRUCK if kind == "rejected" else "")
        text = html.escape(self.texts[token])
        return f'<span class="a2d-{kind}" title="{html.escape(tip)}" style="{style}">{text}</span>'

    def _committed(self, step: VerifierStep, now: bool) -> list[str]:
        """The tokens ``step`` committed: its accepted draft prefix, then its own token."""
        n, i = min(step.accepted, len(step.committed)), step.start
        chips = [self._chip("accepted", t, f"drafted, accepted (token {i + j})", now)
                 for j, t in enumerate(step.committed[:n])]  # fmt: skip
        if len(step.committed) > n:  # not cut by an EOS among the accepted draft
            chips.append(self._chip("verifier", step.token, f"verifier's token {i + n}", now))
        return chips

    def _frame(self, index: int) -> list[str]:
        """Span HTML of frame ``index``: prompt, earlier forwards' tokens, then the shown one."""
        spans = [self._chip("prompt", t, "prompt") for t in self.prompt]
        for step in self.steps[: max(index - 1, 0)]:
            spans += self._committed(step, now=False)
        if index > 0:
            step = self.steps[index - 1]
            chips = self._committed(step, now=True)
            rejected = [self._chip("rejected", t, "drafted, rejected", now=True)
                        for t in step.draft[step.accepted :]]  # fmt: skip
            n = min(step.accepted, len(step.committed))
            spans += chips[:n] + rejected + chips[n:]
        return spans

    def caption(self, step: int, row: int = 0) -> str:
        generated = sum(len(s.committed) for s in self.steps[:step])
        if step == 0:
            return f"prompt · {len(self.steps)} verifier forwards follow"
        s = self.steps[step - 1]
        return (f"verifier forward {step}/{len(self.steps)} · draft of {len(s.draft)} in "
                f"{s.drafter_forwards} drafter forwards · {s.accepted} accepted + the verifier's "
                f"token · {generated} tokens generated")  # fmt: skip

    def _span(self, step: int, row: int, pos: int) -> str:
        frame = self.frames[step]
        return frame[pos] if pos < len(frame) else ""

    def legend(self) -> str:
        chips = [
            f'<span style="{_CELL}background:{SPECULATION_COLORS[k][0]};{extra}">{label}</span>'
            for k, label, extra in [("accepted", "accepted draft", ""),
                                    ("rejected", "rejected draft", _STRUCK),
                                    ("verifier", "verifier's token", "")]
        ]  # fmt: skip
        earlier = SPECULATION_COLORS["accepted"][1]
        chips.append(f'<span style="{_CELL}background:{earlier}">lighter</span> = earlier forwards')
        return f'<div style="font-size:smaller;margin-top:4px">{" ".join(chips)}</div>'

    def render(self, step: int, row: int = 0) -> str:
        title = f"<b>{html.escape(self.title)}</b> · " if self.title else ""
        spans = "".join(self.frames[step])
        caption = f'<div class="a2d-caption">{title}{self.caption(step)}</div>'
        return caption + f"{player.TOKENS_OPEN}{spans}</div>" + self.legend()


class SpeculationViewer(PlayerView):
    """A speculative decoding run forward by forward: play/step slider over verifier forwards.

    Frame 0 is the prompt; frame i is verifier forward i: tokens committed before it (lighter),
    then its draft: the accepted prefix (green), the rejected rest (red, struck through) and the
    verifier's own token (orange). JupyterLab shows the live ipywidgets view (``.widget``); static
    pages ``to_html()``, the same frames played by plain JavaScript.

    Args:
        trace: the ``VerifierStep`` list filled by ``speculative_decode(..., trace=trace)``.
        tokenizer: decodes ids.
        prompt: the prompt ids, drawn grey before the generated tokens (default: none).
        title: heading shown above the tokens.
    """

    def __init__(self, trace: Sequence[VerifierStep], tokenizer, *, prompt=None, title=None):
        import ipywidgets as widgets

        self.panel = _Speculation(trace, tokenizer, prompt, title)
        self.num_steps = self.panel.num_steps
        self.slider = widgets.IntSlider(
            value=0, min=0, max=self.num_steps - 1, description="forward"
        )
        self.play = widgets.Play(value=0, min=0, max=self.num_steps - 1, interval=700)
        self.link = widgets.link((self.play, "value"), (self.slider, "value"))
        self.html = widgets.HTML(self.render(0))
        self.slider.observe(self._refresh, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider]), self.html])

    def _refresh(self, change=None) -> None:
        self.html.value = self.render(self.slider.value)

    def render(self, step: int) -> str:
        """Pure: HTML of frame ``step`` (0: the prompt; i: verifier forward i)."""
        if not 0 <= step < self.num_steps:
            raise ValueError(f"step={step} out of range; valid steps 0..{self.num_steps - 1}")
        return f"{player.VIEWER_OPEN}{player.PANEL_OPEN}{self.panel.render(step)}</div></div>"

    def to_html(self, interval_ms: int = 700) -> str:
        """The viewer as one self-contained HTML+JavaScript element: plays with no kernel."""
        return player.player_html([self.panel], self.num_steps, 1, interval_ms)
