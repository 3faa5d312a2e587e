"""GGUF sources: bad files, unmapped architectures and a missing ``gguf`` package are clear
errors raised before anything is written (the happy path on the real model: test_real_model)."""

import hashlib
import importlib.util

import gguf
import numpy as np
import pytest

from a2dkit import convert
from a2dkit.cli import convert as cli_convert
from a2dkit.convert import gguf as gguf_source
from a2dkit.tutorial import assets


def _write_gguf(path, architecture="nosucharch"):
    """A tiny but valid GGUF file: one F32 tensor and the header keys a reader needs."""
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _convert(model_dir, gguf_file, out, **kwargs):
    return convert.convert(str(model_dir), out, gguf_file=gguf_file, **kwargs)


def test_inspect_reads_architecture_tensor_types_and_sha256(tmp_path):
    path = _write_gguf(tmp_path / "tiny.gguf")
    info = gguf_source.inspect_gguf(tmp_path, "tiny.gguf")
    assert info.architecture == "nosucharch" and info.tensor_types == {"F32": 1}
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_gguf_file_fails_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(gguf_source.GGUFError, match="GGUF file not found.*nope.gguf"):
        _convert(tmp_path, "nope.gguf", out)
    assert not out.exists()


def test_a_file_without_the_gguf_magic_is_refused(tmp_path):
    (tmp_path / "fake.gguf").write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(gguf_source.GGUFError, match=r"not a GGUF file.*b'PK"):
        _convert(tmp_path, "fake.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_truncated_tiny_gguf_is_refused(tmp_path):
    data = _write_gguf(tmp_path / "whole.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) - 64])
    with pytest.raises(gguf_source.GGUFError, match="truncated or corrupt"):
        _convert(tmp_path, "cut.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_truncated_prefix_of_the_real_gguf_is_refused(tmp_path):
    """The first 64 kB of SmolLM2's 98 MB file: a valid header, the vocabulary cut off."""
    with (assets.smollm2_gguf_dir() / assets.SMOLLM2_GGUF).open("rb") as fh:
        (tmp_path / "smol.gguf").write_bytes(fh.read(65_536))
    with pytest.raises(gguf_source.GGUFError, match="smol.gguf is truncated or corrupt"):
        _convert(tmp_path, "smol.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unmapped_architecture_leaves_the_output_dir_untouched(tmp_path):
    _write_gguf(tmp_path / "tiny.gguf")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(gguf_source.GGUFError, match="architecture 'nosucharch' is not mapped"):
        _convert(tmp_path, "tiny.gguf", out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"


def test_without_the_gguf_package_one_error_names_the_extra(tmp_path, monkeypatch):
    _write_gguf(tmp_path / "tiny.gguf")
    real_find_spec = importlib.util.find_spec
    absent = {"gguf"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n in absent else real_find_spec(n, *a)
    )
    with pytest.raises(ImportError, match=r"needs the 'gguf' package.*a2dkit\[gguf\]"):
        _convert(tmp_path, "tiny.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_unknown_dtype_is_refused_with_the_valid_names(tmp_path):
    _write_gguf(tmp_path / "tiny.gguf")
    with pytest.raises(ValueError, match=r"dtype='float8'.*'float32'"):
        _convert(tmp_path, "tiny.gguf", tmp_path / "out", dtype="float8")
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_bad_gguf_file_before_converting(tmp_path):
    (tmp_path / "fake.gguf").write_bytes(b"GGUF" + b"\x00" * 12)
    argv = ["--model_name_or_path", str(tmp_path), "--gguf_file", "fake.gguf",
            "--output_dir", str(tmp_path / "out")]  # fmt: skip
    with pytest.raises(gguf_source.GGUFError, match="fake.gguf"):
        cli_convert.main(argv)
    assert not (tmp_path / "out").exists()
