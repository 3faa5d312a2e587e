"""``python -m a2dkit.cli.self_chat`` on a tiny AR model saved to disk; bad flags exit 2."""

import json

import pytest
from conftest import make_tiny_ar

from a2dkit.cli.errors import run_cli
from a2dkit.cli.self_chat import main
from a2dkit.data.self_chat import INFO, load_self_chat


@pytest.fixture
def source_dir(tmp_path, small_tokenizer):
    path = tmp_path / "tiny-ar"
    make_tiny_ar("qwen3", small_tokenizer).save_pretrained(path)
    small_tokenizer.save_pretrained(path)
    return path


def test_builds_prints_and_reuses_the_set(source_dir, tmp_path, capsys):
    out = tmp_path / "self-chat"
    flags = ["--model_name_or_path", str(source_dir), "--output_dir", str(out), "--num_train",
             "4", "--num_test", "2", "--max_new_tokens", "3", "--batch_size", "3"]  # fmt: skip
    assert run_cli(main, flags) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[-1] == str(out) and "self-chat: 6/6 prompts" in printed
    info = json.loads((out / INFO).read_text())
    assert info["settings"]["source"] == str(source_dir.resolve())
    assert [len(v) for v in load_self_chat(out).values()] == [4, 2]
    assert run_cli(main, flags) == 0  # reused: nothing generated
    assert "prompts," not in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_train", "0"], "--num_train 0 must be >= 1"),
        (["--num_test", "-1"], "--num_test -1 must be >= 0"),
        (["--dtype", "float64"], "dtype='float64' is not valid"),
        (["--num_train", "99999"], "num_train=99999 is more than the"),
    ],
)
def test_bad_flags_are_one_line_before_the_model_loads(flags, message, tmp_path, capsys):
    missing = str(tmp_path / "no-model")  # never loaded: the flags fail first
    assert run_cli(main, ["--model_name_or_path", missing, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
