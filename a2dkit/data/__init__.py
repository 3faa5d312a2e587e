"""Records -> training tensors: named datasets and ``--dataset_args`` mixtures (as dLLM A2D),
packing and SFT tokenisation, the collator, and the kit's offline sets (tiny-shakespeare, the
synthetic chat tasks, countdown and sudoku puzzles).

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from a2dkit.data.loaders import LOADERS, load_dataset_args, load_named_dataset
from a2dkit.data.preprocess import (
    DiffusionCollator,
    chat_prompts,
    column_names,
    normalize_messages,
    prepare_sft_dataset,
    tokenize_and_pack,
    tokenize_sft,
)
from a2dkit.data.spec import SPLIT_KEYS, DatasetSpec, parse_dataset_args

__all__ = [
    "LOADERS",
    "SPLIT_KEYS",
    "DatasetSpec",
    "DiffusionCollator",
    "chat_prompts",
    "column_names",
    "load_dataset_args",
    "load_named_dataset",
    "normalize_messages",
    "parse_dataset_args",
    "prepare_sft_dataset",
    "tokenize_and_pack",
    "tokenize_sft",
]
