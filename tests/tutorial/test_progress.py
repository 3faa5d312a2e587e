"""hide_progress_bars: tqdm (even with an explicit disable=False), transformers and datasets."""

import io

import datasets
import tqdm
from transformers.utils import logging

from a2dkit.tutorial import progress


def test_hide_progress_bars_silences_tqdm_transformers_and_datasets(monkeypatch):
    init = tqdm.tqdm.__init__  # loud again for this test (get_scale elsewhere hid the bars)
    monkeypatch.setattr(tqdm.tqdm, "__init__", getattr(init, "_a2dkit_original", init))
    loud = io.StringIO()
    list(tqdm.tqdm(range(3), file=loud, disable=False))
    assert "3/3" in loud.getvalue()  # the control: a bar is drawn before
    progress.hide_progress_bars()
    progress.hide_progress_bars()  # idempotent
    quiet = io.StringIO()
    list(tqdm.tqdm(range(3), file=quiet, disable=False))  # lm-eval passes disable=False
    assert quiet.getvalue() == ""
    assert not logging.is_progress_bar_enabled() and datasets.is_progress_bar_enabled() is False
    logging.enable_progress_bar()
    datasets.enable_progress_bars()
