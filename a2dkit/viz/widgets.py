"""What every widget of ``a2dkit.viz`` shares: a figure's axes, and the display protocol that
shows an ipywidgets view in Jupyter and a static fallback elsewhere (nbval, the book).
"""

from __future__ import annotations

__all__ = ["new_axes", "WidgetView", "PlayerView"]


def new_axes(ax, figsize: tuple[float, float]):
    """(figure, axes) of ``ax``, or a new pair; Agg is selected only when no backend is set."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib

    if matplotlib.get_backend(auto_select=False) is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")  # keeps labels and title in
    plt.close(fig)  # the caller returns the Figure; pyplot must not auto-show a duplicate
    return fig, ax


class WidgetView:
    """Displays as its ``.widget`` (an ipywidgets box) in Jupyter."""

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class PlayerView(WidgetView):
    """A view that also renders as one self-contained player (``to_html()``, no kernel):
    JupyterLab shows the live widget, the static book (myst-nb, text/html ranked first in
    book/_config.yml) the player."""

    def to_html(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_mimebundle_(self, **kwargs):
        return {**self.widget._repr_mimebundle_(**kwargs), "text/html": self.to_html()}

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
