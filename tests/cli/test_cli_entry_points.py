"""Entry points a2dkit.cli.{mdlm,bd3lm}.{sample,chat}, laid out as dLLM's examples/a2d."""

from __future__ import annotations

import copy
import importlib
import io

import pytest
from conftest import make_tiny_ar

from a2dkit.cli import sample as sample_cli
from a2dkit.convert import to_diffusion
from a2dkit.samplers import BD3LMSampler, MDLMSampler

SAMPLERS = {"mdlm": MDLMSampler, "bd3lm": BD3LMSampler}
FLAGS = ["--max_new_tokens", "8", "--steps", "8", "--block_size", "4"]


@pytest.fixture(scope="module")
def checkpoint(small_tokenizer, tmp_path_factory):
    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = to_diffusion(make_tiny_ar("llama", tok, seed=3), tok)
    path = tmp_path_factory.mktemp("a2d-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), model.eval(), tok


@pytest.mark.parametrize("algo", SAMPLERS)
def test_sample_entry_point_uses_its_algorithm(checkpoint, capsys, algo):
    path, model, tok = checkpoint
    cli = importlib.import_module(f"a2dkit.cli.{algo}.sample").cli
    assert cli(["--model_name_or_path", path, "--prompts", "ROMEO:", *FLAGS]) == 0
    printed = capsys.readouterr().out
    ids = sample_cli.encode(tok, "ROMEO:", chat_template=False)
    oracle = SAMPLERS[algo](model, tok).sample([ids], max_new_tokens=8, steps=8, block_size=4)
    assert f"[Sample 0] ROMEO:\n{sample_cli.completion(tok, oracle, 0)}\n" in printed
    assert f"{oracle.nfe} forward passes" in printed


@pytest.mark.parametrize("algo", SAMPLERS)
def test_chat_entry_point_names_its_algorithm(checkpoint, capsys, monkeypatch, algo):
    path, _, _ = checkpoint
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi\n"))
    cli = importlib.import_module(f"a2dkit.cli.{algo}.chat").cli
    argv = ["--model_name_or_path", path, "--chat_template", "True", "--frame_delay", "0", *FLAGS]
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert f"({algo})" in printed and printed.count("assistant>") == 1


@pytest.mark.parametrize("module", ["mdlm.sample", "bd3lm.chat"])
def test_algo_flag_is_refused_by_the_fixed_entry_points(module):
    cli = importlib.import_module(f"a2dkit.cli.{module}").cli
    with pytest.raises(ValueError, match="--algo is fixed"):
        cli(["--model_name_or_path", "x", "--algo", "mdlm"])
