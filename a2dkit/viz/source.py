"""Show the library's own code in a notebook: the reader sees exactly what runs.

References: the annotated-transformer style (define, then show).
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["show_source"]


class _Source(str):
    """Source text already shown by ``show_source``; displaying it again in Jupyter is a no-op."""

    def _ipython_display_(self) -> None:
        pass


def show_source(obj: Any) -> str:
    """Show ``inspect.getsource(obj)`` (highlighted in Jupyter, printed elsewhere) and return it."""
    source = _Source(inspect.getsource(obj))
    try:
        from IPython import get_ipython
        from IPython.display import Code, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and type(get_ipython()).__name__ == "ZMQInteractiveShell":
        display(Code(source, language="python"))  # Jupyter: syntax-highlighted
    else:
        print(source)
    return source
