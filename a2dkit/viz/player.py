"""The denoising viewer as one self-contained HTML element: frames as JSON, a few lines of plain
JavaScript (play, pause, step slider, row choice). It needs no kernel, so it plays on the static
book page; JupyterLab shows the live ipywidgets view of the same ``DenoisingViewer`` instead.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

__all__ = ["PANEL_OPEN", "TOKENS_OPEN", "VIEWER_OPEN", "player_html", "trajectory_frames"]

VIEWER_OPEN = '<div class="a2d-viewer" style="display:flex;gap:24px">'
PANEL_OPEN = '<div style="flex:1;min-width:0">'
TOKENS_OPEN = '<div style="line-height:2;word-break:break-all">'

# Rebuilds DenoisingViewer.render(step, row) from the frame tables; data: see player_html.
_SCRIPT = """(() => {
  const root = document.getElementById(%(id)s), data = %(data)s;
  const [play, slider, rows, view] = ['play', 'slider', 'row', 'view'].map(
      k => root.querySelector('.a2d-player-' + k));
  const render = (step, row) => data.viewer_open + data.panels.map(p => {
    const s = Math.min(step, p.frames.length - 1);
    return data.panel_open + p.before + p.captions[s][row] + p.middle +
        p.frames[s][row].map(i => p.spans[i]).join('') + p.after + '</div>';
  }).join('') + '</div>';
  let timer = null;
  const show = () => { view.innerHTML = render(+slider.value, +rows.value); };
  const stop = () => { clearInterval(timer); timer = null; play.textContent = '\\u25B6 Play'; };
  play.onclick = () => {
    if (timer !== null) return stop();
    if (+slider.value >= data.num_steps - 1) { slider.value = 0; show(); }
    play.textContent = '\\u275A\\u275A Pause';
    timer = setInterval(() => {
      if (+slider.value >= data.num_steps - 1) return stop();
      slider.value = +slider.value + 1; show();
    }, data.interval);
  };
  slider.oninput = show; rows.onchange = show;
  show();
})();"""


def trajectory_frames(traj: Any, num_rows: int) -> dict:
    """One panel's frame tables: every distinct token span once, each frame as indices into them.

    Args:
        traj: an ``a2dkit.viz._Trajectory`` (canvases (S, B, T), commit steps, token texts).
        num_rows: rows shown (the viewer's ``num_rows``).

    Returns:
        ``{"spans": [str], "frames": [S][rows][T] int, "captions": [S][rows] str, "before",
        "middle", "after"}``; joining them gives exactly ``traj.render(step, row)``.
    """
    spans: dict[str, int] = {}
    frames, captions = [], []
    for step in range(traj.num_steps):
        frames.append([[spans.setdefault(traj._span(step, row, pos), len(spans))
                        for pos in range(traj.width)] for row in range(num_rows)])  # fmt: skip
        captions.append([traj.caption(step, row) for row in range(num_rows)])
    title = f"<b>{html.escape(traj.title)}</b> · " if traj.title else ""
    return {
        "spans": list(spans), "frames": frames, "captions": captions,
        "before": f'<div class="a2d-caption">{title}', "middle": f"</div>{TOKENS_OPEN}",
        "after": "</div>" + traj.legend(),
    }  # fmt: skip


def player_html(panels: list, num_steps: int, num_rows: int, interval_ms: int = 400) -> str:
    """A ``<div>`` with the controls, the first frame (shown as is without JavaScript) and the
    script that plays every frame; self-contained (no kernel, no network, no library)."""
    data = {
        "panels": [trajectory_frames(p, num_rows) for p in panels], "num_steps": num_steps,
        "interval": interval_ms, "viewer_open": VIEWER_OPEN, "panel_open": PANEL_OPEN,
    }  # fmt: skip
    uid = f"a2d-player-{uuid.uuid4().hex}"
    last = [p.render(p.num_steps - 1, 0) for p in panels]  # no JavaScript: the finished text
    static = VIEWER_OPEN + "".join(f"{PANEL_OPEN}{c}</div>" for c in last) + "</div>"
    options = "".join(f'<option value="{r}">row {r}</option>' for r in range(num_rows))
    hide = ' style="display:none"' if num_rows == 1 else ""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")  # no "</script>"
    script = _SCRIPT % {"id": json.dumps(uid), "data": payload}
    return (
        f'<div id="{uid}" class="a2d-player">'
        '<div style="display:flex;gap:12px;align-items:center;margin-bottom:6px">'
        '<button type="button" class="a2d-player-play">\u25b6 Play</button>'
        f'<input type="range" class="a2d-player-slider" min="0" max="{num_steps - 1}" '
        'value="0" step="1" style="width:280px" aria-label="step">'
        f'<select class="a2d-player-row"{hide} aria-label="row">{options}</select></div>'
        f'<div class="a2d-player-view"><noscript>{static}</noscript></div>'
        f"<script>{script}</script></div>"
    )
