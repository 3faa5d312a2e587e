"""Dataset loader of the a2dkit_synthetic tasks: the JSONL next to this file (no download).

Regenerate test.jsonl with a2dkit.eval.tasks.synthetic_task_rows() (a test checks they agree).
"""

from __future__ import annotations

from pathlib import Path

import datasets

DATA = Path(__file__).with_name("test.jsonl")


def load_docs(**kwargs) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook; ``kwargs`` (task metadata) are ignored."""
    return datasets.DatasetDict({"test": datasets.Dataset.from_json(str(DATA))})
