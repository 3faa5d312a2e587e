"""Self-distilled chat data: a source AR model's own greedy answers to the kit's everyday prompts
(``a2dkit.data.prompt_sets``), built once into the kit cache and read as ``a2dkit/self-chat``.

Build: ``python -m a2dkit.cli.self_chat`` (default source: the ``laptop`` scale's SmolLM2-135M
-Instruct). The set lives in ``<a2dkit cache>/self-chat/<key>``, the key naming the source, the
prompt-set version and the generation settings; ``self_chat.json`` describes it and is written
last, and the directory appears complete or not at all (built under ``<key>.partial``, renamed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict

from a2dkit import _env
from a2dkit.data.greedy import BATCH_SIZE, answer_batches
from a2dkit.data.prompt_sets import PROMPTS_VERSION, everyday_prompts

__all__ = [
    "FORMAT_VERSION",
    "LAPTOP_SOURCE",
    "BUILD_COMMAND",
    "TRUNCATED",
    "SelfChatSettings",
    "source_name",
    "build_self_chat",
    "self_chat_dir",
    "load_self_chat",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # of a built set (rows, json); bump when either changes
# the laptop scale's source (a2dkit.tutorial.SMOLLM2; data/ may not import tutorial/)
LAPTOP_SOURCE = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUILD_COMMAND = "python -m a2dkit.cli.self_chat --model_name_or_path {source}"
INFO = "self_chat.json"  # written last: marks a complete set
TRUNCATED = ("keep", "drop", "trim")  # what load_self_chat does with answers cut off
# the end of a sentence (not "1." of a list) or of a line
_SENTENCE_END = re.compile(r"(?<=[^\d\s])[.!?](?=\s|$)|\n")
_ANSWERS = "answers.jsonl"  # in <key>.partial: what a killed build had done (resumed)


@dataclass(frozen=True)
class SelfChatSettings:
    """What a built set depends on, and so its cache key."""

    source: str  # the Hub id, or a local checkpoint's absolute path
    num_train: int = 2200
    num_test: int = 200
    seed: int = 0
    max_new_tokens: int = 64
    dtype: str = "float32"

    def key(self) -> str:
        """``<source name>-p<prompts version>-t<max_new_tokens>-<hash of all settings>``."""
        blob = json.dumps(asdict(self) | {"format": FORMAT_VERSION, "prompts": PROMPTS_VERSION})
        digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
        slug = re.sub(r"[^a-z0-9.]+", "-", Path(self.source).name.lower()).strip("-")
        return f"{slug}-p{PROMPTS_VERSION}-t{self.max_new_tokens}-{digest}"


def source_name(name_or_path: str | Path) -> str:
    """The name a set's key uses: a local checkpoint's absolute path, else the Hub id as given."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else str(name_or_path)


def self_chat_dir(settings: SelfChatSettings, root: str | Path | None = None) -> Path:
    """Where ``settings``' set is built: ``<root or a2dkit cache>/self-chat/<settings.key()>``."""
    base = Path(root) if root is not None else _env.cache_dir() / "self-chat"
    return base / settings.key()


# ------------------------------------------------------------------ the cached set
def _weights_sha256(model: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _read_done(path: Path) -> dict[int, dict[str, Any]]:
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row.pop("index"): row for row in rows}


def _rows(prompts: list[dict[str, str]], answers: list[dict[str, Any]]) -> Dataset:
    rows = []
    for p, a in zip(prompts, answers, strict=True):
        messages = [{"role": "user", "content": p["prompt"]}]
        messages.append({"role": "assistant", "content": a["answer"]})
        rows.append({"messages": messages, **p, **a})
    return Dataset.from_list(rows)


def build_self_chat(
    model: Any,
    tokenizer: Any,
    settings: SelfChatSettings,
    *,
    output_dir: str | Path | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
) -> Path:
    """Build (or reuse) the self-chat set of ``model`` (which must be ``settings.source``).

    Args:
        model, tokenizer: the source AR model (in ``settings.dtype``) and its chat tokenizer.
        settings: the source's name and the prompt and generation settings (the cache key).
        output_dir: default ``self_chat_dir(settings)``; reused when it holds ``self_chat.json``.
        batch_size: prompts per ``generate`` call (does not enter the key).
        on_batch: called with (prompts done, prompts in all) after each batch.

    Returns:
        The directory: a ``DatasetDict`` (``load_self_chat``) with ``train`` and ``test`` rows
        ``messages`` (user prompt, assistant answer), ``prompt``, ``category``, ``template``,
        ``answer``, ``num_tokens``, ``truncated``; and ``self_chat.json``.
    """
    out = Path(output_dir) if output_dir is not None else self_chat_dir(settings)
    if (out / INFO).is_file():
        return out
    if str(model.dtype).removeprefix("torch.") != settings.dtype:
        raise ValueError(f"the model is in {model.dtype}; settings.dtype={settings.dtype!r}")
    sets = everyday_prompts(settings.num_train, settings.num_test, settings.seed)
    prompts = [row["prompt"] for split in ("train", "test") for row in sets[split]]
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    done = _read_done(partial / _ANSWERS)  # a killed build resumes where it stopped
    todo = [i for i in range(len(prompts)) if i not in done]
    clock = partial / "seconds"  # generation time of every run of this build, summed
    started = time.perf_counter() - (float(clock.read_text()) if clock.is_file() else 0.0)
    batches = answer_batches(model, tokenizer, prompts, todo, settings.max_new_tokens, batch_size)
    with open(partial / _ANSWERS, "a", encoding="utf-8") as fh:
        for batch in batches:
            fh.writelines(json.dumps({"index": i} | a) + "\n" for i, a in batch)
            fh.flush()
            done.update(batch)
            clock.write_text(f"{time.perf_counter() - started:.1f}")
            if on_batch is not None:
                on_batch(len(done), len(prompts))
    seconds = time.perf_counter() - started
    answers = [done[i] for i in range(len(prompts))]
    n = settings.num_train
    splits = {"train": (sets["train"], answers[:n]), "test": (sets["test"], answers[n:])}
    DatasetDict({k: _rows(*v) for k, v in splits.items()}).save_to_disk(str(partial / "data"))
    info = _describe(model, settings, answers, seconds, batch_size, len(todo))
    (partial / INFO).write_text(json.dumps(info, indent=2))
    (partial / _ANSWERS).unlink()
    clock.unlink(missing_ok=True)
    shutil.rmtree(out, ignore_errors=True)  # an incomplete set (no self_chat.json)
    os.replace(partial, out)
    return out


def _describe(
    model: Any, settings: SelfChatSettings, answers: list, seconds: float, batch: int, todo: int
) -> dict[str, Any]:
    import platform

    import transformers

    return {
        "settings": asdict(settings),
        "format_version": FORMAT_VERSION,
        "prompts_version": PROMPTS_VERSION,
        "rows": {"train": settings.num_train, "test": settings.num_test},
        "truncated": sum(a["truncated"] for a in answers),
        "mean_answer_tokens": sum(a["num_tokens"] for a in answers) / max(len(answers), 1),
        "weights_sha256": _weights_sha256(model),
        "generation": {
            "seconds": round(seconds, 1),  # summed over a resumed build's runs
            "prompts_generated": todo,  # in this run (a resumed build did the rest before)
            "batch_size": batch,
            "device": str(model.device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def _trim(row: dict[str, Any]) -> dict[str, Any]:
    """A truncated answer cut after its last full sentence or line ("" when it has none)."""
    if not row["truncated"]:
        return row
    ends = [m.end() for m in _SENTENCE_END.finditer(row["answer"])]
    answer = row["answer"][: max(ends, default=0)].strip()
    messages = [*row["messages"][:-1], {"role": "assistant", "content": answer}]
    return row | {"answer": answer, "messages": messages}


def load_self_chat(
    path: str | Path | None = None, source: str = LAPTOP_SOURCE, truncated: str = "keep"
) -> DatasetDict:
    """A built self-chat set: the directory ``path``, else the set of ``source`` built with the
    default settings (``SelfChatSettings(source)``).

    Args:
        truncated: what to do with answers that hit ``max_new_tokens``: ``keep`` them as
            generated, ``drop`` their rows, or ``trim`` them after their last full sentence or
            line (rows with none are dropped).

    Raises:
        FileNotFoundError: it is not built; the message names the command that builds it.
    """
    _env.check_choice("truncated", truncated, TRUNCATED)
    source = source_name(source)
    out = Path(path) if path is not None else self_chat_dir(SelfChatSettings(source))
    if not (out / INFO).is_file():
        raise FileNotFoundError(
            f"no self-chat set in {str(out)!r}; build it with: "
            + BUILD_COMMAND.format(source=source)
            + ("" if path is None else f" --output_dir {out}")
        )
    from datasets import load_from_disk

    dsd, drop = load_from_disk(str(out / "data")), truncated == "drop"
    if truncated == "trim":
        dsd = dsd.map(_trim, keep_in_memory=True)  # never a cache file in the built set
    if truncated != "keep":
        keep = lambda row: bool(row["answer"]) and not (drop and row["truncated"])  # noqa: E731
        dsd = dsd.filter(keep, keep_in_memory=True)
    return dsd
