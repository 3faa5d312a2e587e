"""The tutorial notebooks: each .ipynb pairs its jupytext .py, ships without outputs, follows the
page skeleton, and the book's toc lists exactly the notebooks, in their numbered order."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
PAIRED = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SKELETON = [
    "## What you'll learn",
    "## What you'll need",
    "## Summary",
    "## Exercises",
    "## References",
]
COLAB = "https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/"
VIZ_FIGURES = {"viz.plot_trajectory", "viz.plot_mask", "viz.animate"}  # return, never show


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def _toc_notebooks() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f.removeprefix("notebooks/") for f in files if f.startswith("notebooks/")]


def _is_scale_from_env(node: ast.stmt) -> bool:
    """``SCALE = os.environ.get("A2DKIT_SCALE", "smoke")``, the parameters-cell contract."""
    if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
        return False
    targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
    args = [a.value for a in node.value.args if isinstance(a, ast.Constant)]
    return (
        targets == ["SCALE"]
        and ast.unparse(node.value.func) == "os.environ.get"
        and args == ["A2DKIT_SCALE", "smoke"]
    )


def test_there_are_notebooks_and_every_py_has_its_ipynb():
    assert SOURCES, "no notebooks/NN_*.py found"
    assert [p.stem for p in SOURCES] == [p.stem for p in PAIRED]


@pytest.mark.parametrize("path", PAIRED, ids=lambda p: p.stem)
def test_ipynb_has_the_same_cells_as_its_py(path: Path):
    paired = nbformat.read(path, as_version=4)
    source = jupytext.read(path.with_suffix(".py"))
    assert _cells(paired) == _cells(source), f"run: jupytext --to ipynb {path.with_suffix('.py')}"


@pytest.mark.parametrize("path", PAIRED, ids=lambda p: p.stem)
def test_ipynb_is_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "widgets" not in nb.metadata  # no saved ipywidgets state either


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_reads_the_scale_from_the_environment(path: Path):
    nb = jupytext.read(path)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert tagged[0].cell_type == "code"
    assert any(_is_scale_from_env(node) for node in ast.parse(tagged[0].source).body)
    assert "get_scale(SCALE)" in tagged[0].source  # every size comes from the scales table


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_title_and_colab_badge_match_the_file(path: Path):
    first = jupytext.read(path).cells[0]
    assert first.cell_type == "markdown"
    title = first.source.splitlines()[0]
    number = int(path.name[:2])
    assert re.fullmatch(rf"# {number}\. [A-Z0-9].+", title), title
    assert f"{COLAB}{path.stem}.ipynb" in first.source


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_page_skeleton_headings_appear_in_order(path: Path):
    lines = [
        line.strip()
        for c in jupytext.read(path).cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
    ]
    found = [line for line in lines if line in SKELETON]
    assert found == SKELETON, f"want each of {SKELETON} once, in this order; got {found}"
    references = "\n".join(lines[lines.index("## References") :])
    assert re.search(r"arXiv[: ]\s*\d{4}\.\d{4,5}", references), "cite papers by arXiv id"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_figures_returned_by_viz_are_displayed(path: Path):
    """viz.plot_* / viz.animate return a closed Figure (or an animation): a cell that only
    assigns it, ``fig = viz.plot_trajectory(...)``, shows nothing, in Jupyter or in the book."""
    hidden = []
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code":
            continue
        body = ast.parse(TransformerManager().transform_cell(cell.source)).body  # %magics ok
        last = body[-1] if body else None
        if isinstance(last, ast.Assign) and isinstance(last.value, ast.Call):
            call = ast.unparse(last.value.func)
            keywords = {k.arg for k in last.value.keywords}
            if call in VIZ_FIGURES and "ax" not in keywords:
                hidden.append(ast.unparse(last)[:80])
    assert hidden == [], "end the cell with the figure (e.g. a last line `fig`) to display it"


def test_toc_lists_exactly_the_notebooks_in_numbered_order():
    listed = _toc_notebooks()
    assert listed == [p.stem for p in SOURCES]
    assert [int(name[:2]) for name in listed] == list(range(1, len(listed) + 1))
