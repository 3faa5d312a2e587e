"""Tests for a2dkit.viz on hand-built histories with a known commit order (no sampler needed)."""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from a2dkit import viz
from a2dkit.diffusion import attention

WORDS = [
    "[PAD]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "slept",
    "<b>",
    "$",
    "x\ny",
]
PAD, MASK = 0, 1


@pytest.fixture(scope="module")
def tokenizer():
    """A WordLevel tokenizer over WORDS, wrapped so it has mask_token_id and pad_token_id."""
    vocab = {w: i for i, w in enumerate(WORDS)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[PAD]"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=raw, mask_token="[MASK]", pad_token="[PAD]")


def make_history(final: torch.Tensor, commit_at: torch.Tensor, num_steps: int) -> list:
    """Canvas s shows final[b, t] where commit_at[b, t] <= s, else [MASK] (commit_at=-1: prompt)."""
    return [
        torch.where(commit_at <= s, final, torch.full_like(final, MASK)) for s in range(num_steps)
    ]


# Row 0: 2-token prompt, then 6 tokens committed at steps 1, 1, 2, 3, 3, 4 (shuffled positions).
# Row 1: left pad + 1-token prompt, one position never committed (commit step 5 = len(history)).
FINAL = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9], [PAD, 2, 7, 4, 3, 9, 6, 5]])
COMMIT = torch.tensor([[-1, -1, 3, 1, 4, 1, 2, 3], [-1, -1, 2, 2, 1, 5, 4, 3]])
STEPS = 5


@pytest.fixture
def history():
    return make_history(FINAL, COMMIT, STEPS)


def commit_steps_reference(history: list, mask_token_id: int) -> torch.Tensor:
    """Loop oracle: walk back from the end to the last masked step; -1 if never masked."""
    num_steps, (rows, width) = len(history), history[0].shape
    out = torch.empty(rows, width, dtype=torch.long)
    for b in range(rows):
        for t in range(width):
            masked = [bool(h[b, t] == mask_token_id) for h in history]
            step = num_steps
            while step > 0 and not masked[step - 1]:
                step -= 1
            out[b, t] = step if any(masked) else -1
    return out


def test_commit_steps_recovers_the_known_commit_order(history):
    assert torch.equal(viz.commit_steps(history, MASK), COMMIT)


def test_commit_steps_matches_loop_reference_on_random_remasking_histories():
    gen = torch.Generator().manual_seed(0)
    history = []
    for _ in range(7):
        tokens = torch.randint(2, 9, (3, 11), generator=gen)
        masked = torch.rand(3, 11, generator=gen) < 0.5
        history.append(torch.where(masked, MASK, tokens))
    assert torch.equal(viz.commit_steps(history, MASK), commit_steps_reference(history, MASK))


def test_commit_steps_accepts_sampler_output_and_growing_canvases(history):
    assert torch.equal(viz.commit_steps(SimpleNamespace(history=history), MASK), COMMIT)
    grown = [torch.full((1, 2), MASK), torch.tensor([[4, MASK, MASK]]), torch.tensor([[4, 5, 6]])]
    assert viz.commit_steps(grown, MASK).tolist() == [[1, 2, 2]]  # missing columns count as masks
    with pytest.raises(ValueError, match="history is empty"):
        viz.commit_steps([], MASK)


def count(html: str, kind: str) -> int:
    return html.count(f'class="a2d-{kind}"')


def remaining(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"(\d+) masks remaining", html)]


def test_render_draws_one_mask_box_per_masked_position(history, tokenizer):
    viewer = viz.DenoisingViewer(history, tokenizer)
    for step in range(STEPS):
        for row in range(2):
            html = viewer.render(step, row)
            n_masks = int((history[step][row] == MASK).sum())
            assert count(html, "mask") == n_masks
            assert remaining(html) == [n_masks]
            assert count(html, "token") == int((history[step][row] != MASK).sum()) - 2
    assert count(viewer.render(0, 1), "pad") == 0  # left padding is hidden
    assert count(viewer.render(0, 1), "prompt") == 1


def test_token_colour_is_a_function_of_the_commit_step(history, tokenizer):
    html = viz.DenoisingViewer(history, tokenizer).render(STEPS - 1, 0)
    spans = re.findall(r'pos (\d+), committed at step (\d+)" style="[^"]*background:(#\w+)', html)
    spans = [s for s in spans if int(s[1]) >= 1]
    assert {int(p): int(c) for p, c, _ in spans} == {t: int(COMMIT[0, t]) for t in range(2, 8)}
    colour = {}
    for _, step, bg in spans:
        assert colour.setdefault(step, bg) == bg  # same step -> same colour
    assert len(set(colour.values())) == len(colour)  # different steps -> different colours


def test_just_committed_tokens_are_outlined(history, tokenizer):
    viewer = viz.DenoisingViewer(history, tokenizer)
    for step in range(1, STEPS):
        spans = re.findall(r'<span class="a2d-token"[^>]*>', viewer.render(step, 0))
        outlined = sum("outline" in s for s in spans)
        assert outlined == int((COMMIT[0] == step).sum())


def test_sliders_drive_the_html_and_play_is_linked(history, tokenizer):
    viewer = viz.DenoisingViewer(history, tokenizer, title="demo")
    first = viewer.html.value
    assert first == viewer.render(0, 0) and "demo" in first
    viewer.slider.value = 2
    assert viewer.html.value == viewer.render(2, 0) != first
    viewer.play.value = 4
    assert viewer.slider.value == 4 and viewer.html.value == viewer.render(4, 0)
    viewer.row_selector.value = 1
    assert viewer.html.value == viewer.render(4, 1)
    assert remaining(viewer.html.value) == [1]  # row 1 keeps its never-committed position
    assert viewer.play.max == viewer.slider.max == STEPS - 1
    assert viewer.widget.children[1] is viewer.html
    assert "application/vnd.jupyter.widget-view+json" in viewer._repr_mimebundle_()


def test_prompt_len_and_bad_inputs(history, tokenizer):
    viewer = viz.DenoisingViewer(history, tokenizer, prompt_len=[4, 2])
    assert count(viewer.render(STEPS - 1, 0), "prompt") == 4
    with pytest.raises(ValueError, match="prompt_len"):
        viz.DenoisingViewer(history, tokenizer, prompt_len=[1, 2, 3])
    with pytest.raises(ValueError, match="step=5"):
        viewer.render(5, 0)
    with pytest.raises(ValueError, match="mask_token_id"):
        viz.DenoisingViewer(history, SimpleNamespace(mask_token_id=None))
    custom = viz.DenoisingViewer(history, tokenizer, mask_token_id=2)  # any id can be "the mask"
    assert count(custom.render(STEPS - 1, 0), "mask") == int((history[-1][0] == 2).sum())


def test_side_by_side_panels_share_one_slider_and_short_history_clamps(history, tokenizer):
    short = history[:3]
    viewer = viz.DenoisingViewer.side_by_side(
        {"MDLM": (history, tokenizer), "BD3LM": (short, tokenizer)}
    )
    assert viewer.slider.max == STEPS - 1
    html = viewer.html.value
    assert "MDLM" in html and "BD3LM" in html
    assert remaining(html) == [6, 6]
    viewer.slider.value = STEPS - 1
    masks_short = int((short[-1][0] == MASK).sum())  # clamped at its last step
    assert remaining(viewer.html.value) == [0, masks_short]
    with pytest.raises(ValueError, match="panels is empty"):
        viz.DenoisingViewer.side_by_side({})


def image_array(fig) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_mask_explorer_sliders_change_the_figure(tokenizer):
    explorer = viz.MaskExplorer(length=8, block_size=2)
    assert np.array_equal(image_array(explorer.current_figure), attention.staircase_mask(8, 2))
    png = explorer.image.value
    explorer.length.value = 12
    assert list(explorer.block_size.options) == [1, 2, 3, 4, 6, 12]
    assert explorer.block_size.value == 2
    assert np.array_equal(image_array(explorer.current_figure), attention.staircase_mask(12, 2))
    assert explorer.image.value != png
    explorer.block_size.value = 4
    assert np.array_equal(image_array(explorer.current_figure), attention.staircase_mask(12, 4))
    explorer.length.value = 7  # prime: only 1 and 7 divide it; 4 falls back to 1
    assert list(explorer.block_size.options) == [1, 7] and explorer.block_size.value == 1
    explorer.kind.value = "block_causal"
    expected = attention.block_causal_mask(torch.ones(1, 7, dtype=torch.bool), 1)[0, 0]
    assert np.array_equal(image_array(explorer.current_figure), expected)
    explorer.kind.value = "bidirectional"
    assert image_array(explorer.current_figure).all() and explorer.block_size.disabled


def test_mask_explorer_rejects_bad_sizes():
    with pytest.raises(ValueError, match="block_size=3"):
        viz.MaskExplorer(length=8, block_size=3)
    with pytest.raises(ValueError, match="block_size=3"):
        viz.MaskExplorer(length=8, block_size=2).figure("staircase", 8, 3)
    with pytest.raises(ValueError, match="kind='causal'"):
        viz.build_mask("causal", 8)


def test_plot_mask_draws_the_mask_and_the_split_lines():
    mask = attention.staircase_mask(6, 3)  # (12, 12)
    fig = viz.plot_mask(mask, title="staircase", split=6)
    assert np.array_equal(image_array(fig), mask)
    h_line, v_line = fig.axes[0].lines  # between x_t (rows/cols 0..5) and x_0 (6..11)
    assert list(h_line.get_ydata()) == [5.5, 5.5] and list(v_line.get_xdata()) == [5.5, 5.5]
    batched = attention.bidirectional_padding_mask(torch.tensor([[0, 1, 1]]))  # (1, 1, 3, 3)
    assert np.array_equal(image_array(viz.plot_mask(batched)), batched[0, 0])
    with pytest.raises(ValueError, match="mask must be"):
        viz.plot_mask(torch.ones(2, 3, 3, dtype=torch.bool))


def test_plot_trajectory_image_is_commit_steps_masked_where_masked(history, tokenizer):
    fig = viz.plot_trajectory(history, tokenizer, row=1)
    data = fig.axes[0].images[0].get_array()  # (S, T) masked array
    canvases = torch.stack(history)[:, 1]  # (S, T)
    assert np.array_equal(np.ma.getmaskarray(data), (canvases == MASK).numpy())
    assert np.array_equal(data.filled(-99), np.where(canvases == MASK, -99, COMMIT[1]))
    assert data.shape == (STEPS, FINAL.shape[1])
    with pytest.raises(ValueError, match="row=2"):
        viz.plot_trajectory(history, tokenizer, row=2)


def test_animate_writes_one_gif_frame_per_canvas(history, tokenizer, tmp_path):
    from PIL import Image

    path = tmp_path / "denoise.gif"
    anim = viz.animate(history, tokenizer, row=0, path=path, fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == len(history)
    assert anim.to_jshtml().count("frames[") >= len(history)


def test_html_escapes_and_matplotlib_survives_odd_token_texts(tokenizer, tmp_path):
    odd = torch.tensor([[10, 11, 12, 11]])  # "<b>", "$" (unbalanced mathtext), "x\ny"
    history = make_history(odd, torch.tensor([[1, 2, 1, 2]]), 3)
    html = viz.DenoisingViewer(history, tokenizer).render(2)
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "x\\ny" in html and "x\ny" not in html  # the newline is shown escaped
    viz.animate(history, tokenizer, path=tmp_path / "odd.gif")  # draws every frame: no error
    fig = viz.plot_trajectory(history, tokenizer)
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["<b>", "$", "x\\ny", "$"]


def test_show_source_prints_and_returns_the_real_code(capsys):
    source = viz.show_source(viz.commit_steps)
    assert source.startswith("def commit_steps(") and "torch.where" in source
    assert source in capsys.readouterr().out


def test_importing_viz_does_not_import_widgets_or_matplotlib():
    code = (
        "import sys, a2dkit.viz; print(any(m in sys.modules for m in ('matplotlib', 'ipywidgets')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _join_frames(panel: dict, step: int, row: int) -> str:
    """What the player's JavaScript draws for one panel (its ``render`` in Python)."""
    spans = "".join(panel["spans"][i] for i in panel["frames"][step][row])
    return panel["before"] + panel["captions"][step][row] + panel["middle"] + spans + panel["after"]


def test_player_frames_rebuild_render_exactly_and_the_page_is_self_contained(history, tokenizer):
    from a2dkit.viz import player

    panels = {"A": (history, tokenizer), "B": (history[:3], tokenizer)}
    viewer = viz.DenoisingViewer.side_by_side(panels)
    tables = [player.trajectory_frames(p, viewer.num_rows) for p in viewer.panels]
    for step in range(STEPS):
        for row in range(2):
            cells = [_join_frames(t, min(step, len(t["frames"]) - 1), row) for t in tables]
            body = "".join(f"{player.PANEL_OPEN}{c}</div>" for c in cells)
            assert f"{player.VIEWER_OPEN}{body}</div>" == viewer.render(step, row)
    page = viewer.to_html()
    assert page.count("<script>") == 1 and page.count("</script>") == 1  # JSON cannot close it
    assert "src=" not in page and "http" not in page  # nothing to fetch
    noscript = page.split("<noscript>")[1].split("</noscript>")[0]  # no JavaScript: last step
    assert f"{remaining(noscript)}" == f"{[0, int((history[2][0] == MASK).sum())]}"
    bundle = viewer._repr_mimebundle_()  # JupyterLab: the live widget; the book: the player
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/html"].startswith(
        '<div id="a2d-player-'
    )
