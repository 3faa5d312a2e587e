"""Progress bars off: they are noise in executed notebooks and on the static book pages.

``hide_progress_bars`` switches off the bars of transformers (weight loading), datasets (map,
filter), huggingface_hub, and tqdm in this process (lm-eval, samplers) and in its subprocesses.
"""

from __future__ import annotations

import os

__all__ = ["hide_progress_bars"]

# read by tqdm (>= 4.66) at import, by huggingface_hub/transformers and by datasets at start-up
_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip


def hide_progress_bars() -> None:
    """Disable every progress bar the kit's dependencies draw, now and in child processes."""
    import datasets
    import huggingface_hub
    import tqdm
    import tqdm.auto
    from transformers.utils import logging

    os.environ.update(_ENV)  # subprocesses (CLI runs from notebooks) start quiet
    logging.disable_progress_bar()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()
    for cls in {tqdm.tqdm, tqdm.auto.tqdm}:  # already-imported tqdm ignores the environment
        _default_disable(cls)


def _default_disable(cls: type) -> None:
    """Force ``disable=True`` in a tqdm class (idempotent): lm-eval passes ``disable=False``."""
    if getattr(cls.__init__, "_a2dkit_quiet", False):
        return
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        if len(args) < 11:  # ``disable`` is tqdm's 11th positional parameter
            kwargs["disable"] = True
        original(self, *args, **kwargs)

    __init__._a2dkit_quiet, __init__._a2dkit_original = True, original
    cls.__init__ = __init__
