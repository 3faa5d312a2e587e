"""Build the a2dkit book strictly and offline; print per-chapter run times and where the HTML is.

Every chapter is executed at ``$A2DKIT_SCALE`` (default ``smoke``); a warning or a cell error fails
the build (``jupyter-book build -W -n --keep-going``). The build writes ``a2dkit_build.json`` next
to the HTML: a fingerprint of what it was built from, so tests/test_book.py can reuse a fresh build.

Run: python book/build.py [--only-existing] [--only notebooks/04_x ...] [--incremental]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
STAMP = "a2dkit_build.json"
SUFFIXES = (".md", ".py", ".ipynb")  # chapter sources, in the order Jupyter Book resolves them
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# pages show results, not progress bars or library warnings (tests/test_book.py checks the HTML)
QUIET = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "PYTHONWARNINGS": "ignore",
    "TOKENIZERS_PARALLELISM": "false",
}  # fmt: skip


def toc_entries(toc: Path = BOOK / "_toc.yml") -> list[str]:
    """The ``file:`` entries of a jb-book toc, root first, in reading order."""
    data = yaml.safe_load(toc.read_text())
    chapters = [c for part in data.get("parts", []) for c in part.get("chapters", [])]
    return [data["root"]] + [c["file"] for c in chapters + data.get("chapters", [])]


def chapter_source(entry: str, book: Path = BOOK) -> Path | None:
    """The file a toc entry resolves to (``book/<entry>.md|.py|.ipynb``), or None."""
    return next((p for s in SUFFIXES if (p := book / f"{entry}{s}").is_file()), None)


def fingerprint(entries: list[str], scale: str) -> dict:
    """sha256 of every input of the build (chapters, config, library) and the scale."""
    files = [chapter_source(e) for e in entries] + [BOOK / "_config.yml", BOOK / "_toc.yml"]
    files += sorted((ROOT / "a2dkit").rglob("*.py")) + sorted((BOOK / "_ext").iterdir())
    files += sorted(p for p in (BOOK / "_vendor").rglob("*") if p.is_file())
    digests = {
        str(p.resolve().relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if p is not None
    }
    return {"scale": scale, "chapters": entries, "sha256": digests}


def is_fresh(html: Path, scale: str) -> bool:
    """True when ``html`` holds a complete build of the current sources at ``scale``."""
    stamp = html / STAMP
    if not stamp.is_file():
        return False
    return json.loads(stamp.read_text()) == {**fingerprint(toc_entries(), scale), "partial": False}


def _partial_toc(existing: list[str], directory: Path) -> Path:
    """A copy of the toc without the entries whose files do not exist (yet)."""
    data = yaml.safe_load((BOOK / "_toc.yml").read_text())
    for part in data.get("parts", []):
        part["chapters"] = [c for c in part["chapters"] if c["file"] in existing]
    data["parts"] = [p for p in data.get("parts", []) if p["chapters"]]
    path = directory / "_toc.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _partial_config(directory: Path) -> Path:
    """A copy of the config where links to the chapters left out are not warnings."""
    data = yaml.safe_load((BOOK / "_config.yml").read_text())
    sphinx = data.setdefault("sphinx", {}).setdefault("config", {})
    local = data["sphinx"].get("local_extensions") or {}  # paths: relative to the config file
    data["sphinx"]["local_extensions"] = {name: str(BOOK / path) for name, path in local.items()}
    suppress = sphinx.get("suppress_warnings", [])
    sphinx["suppress_warnings"] = [*suppress, "ref.doc", "myst.xref_missing"]
    path = directory / "_config.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_times(doctrees: Path) -> dict[str, float]:
    """Seconds each executed chapter took, read from the Sphinx environment myst-nb fills."""
    with open(doctrees / "environment.pickle", "rb") as f:
        env = pickle.load(f)
    data = getattr(env, "nb_metadata", {})
    return {
        doc: meta["exec_data"]["runtime"]
        for doc, meta in sorted(data.items())
        if meta.get("exec_data") and meta["exec_data"].get("runtime") is not None
    }


def build(
    only_existing: bool = False,
    incremental: bool = False,
    path_output: Path = BOOK,
    only: list[str] | None = None,
) -> Path:
    """Build the book; return the ``index.html`` path. Raises RuntimeError on any failure.

    ``only``: notebook chapters to keep (the other pages stay), to preview one chapter quickly.
    """
    entries = toc_entries()
    unknown = sorted(set(only or []) - set(entries))
    if unknown:
        raise RuntimeError(f"--only {unknown}: not in book/_toc.yml; valid: {entries}")
    keep = [e for e in entries if not (only and e.startswith("notebooks/") and e not in only)]
    missing = [e for e in keep if chapter_source(e) is None]
    if missing and not only_existing:
        raise RuntimeError(f"toc entries without a file in book/: {missing} (or --only-existing)")
    left_out = [e for e in entries if e not in keep or e in missing]
    entries = [e for e in keep if e not in missing]
    env = {**os.environ, **OFFLINE, **QUIET}
    env["A2DKIT_SCALE"] = os.environ.get("A2DKIT_SCALE", "smoke")
    html = path_output / "_build" / "html"
    (html / STAMP).unlink(missing_ok=True)  # a failed build must not look fresh
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(BOOK), "-W", "-n", "--keep-going"]
    cmd += ["--path-output", str(path_output)]
    cmd += [] if incremental else ["--all"]
    with tempfile.TemporaryDirectory() as tmp:
        if left_out:
            cmd += ["--toc", str(_partial_toc(entries, Path(tmp)))]
            cmd += ["--config", str(_partial_config(Path(tmp)))]
            print(f"[book] partial build, leaving out {left_out}", flush=True)
        start = time.perf_counter()
        result = subprocess.run(cmd, env=env, cwd=ROOT)
    if result.returncode != 0 or not (html / "index.html").is_file():
        raise RuntimeError(f"book build failed (exit {result.returncode}): {' '.join(cmd)}")
    stamp = {**fingerprint(entries, env["A2DKIT_SCALE"]), "partial": bool(left_out)}
    (html / STAMP).write_text(json.dumps(stamp, indent=1))
    times = run_times(path_output / "_build" / ".doctrees")
    for doc, seconds in times.items():
        print(f"[book] executed {doc:45s} {seconds:7.1f} s", flush=True)
    total = time.perf_counter() - start
    print(f"[book] {len(times)} chapters ran {sum(times.values()):.0f} s; build took {total:.0f} s")
    return html / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only-existing", action="store_true", help="skip toc files not written")
    parser.add_argument("--incremental", action="store_true", help="rebuild changed pages only")
    parser.add_argument("--only", nargs="+", metavar="CHAPTER", help="e.g. notebooks/04_x")
    parser.add_argument("--path-output", type=Path, default=BOOK, help="folder for _build/")
    args = parser.parse_args(argv)
    try:
        index = build(args.only_existing, args.incremental, args.path_output.resolve(), args.only)
    except RuntimeError as err:
        print(f"[book] FAILED: {err}", file=sys.stderr)
        return 1
    print(f"[book] HTML: {index}\n[book] open: file://{index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
