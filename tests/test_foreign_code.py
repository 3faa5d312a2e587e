"""No entry point runs a model directory's own Python code, or unpickles its weights, without the
explicit flag; a "y" on stdin (transformers' prompt) must not count as consent."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.cli import chat, sample, train
from a2dkit.cli import contract as cli_contract
from a2dkit.cli import convert as cli_convert
from a2dkit.cli import eval as cli_eval
from a2dkit.cli.bd3lm import chat as bd3lm_chat
from a2dkit.cli.mdlm import sample as mdlm_sample
from a2dkit.models import loading

FLAGS = ["--max_new_tokens", "4", "--steps", "4", "--block_size", "4", "--visualize", "False"]
FLAGS_SAMPLE = FLAGS[:-2]
CODE = """from pathlib import Path
from transformers import PretrainedConfig, PreTrainedModel

Path({marker!r}).write_text("the model directory's own code ran")


class MarkerConfig(PretrainedConfig):
    model_type = "marker_model"


class MarkerModel(PreTrainedModel):
    config_class = MarkerConfig
"""


def make_custom_code_dir(root: Path, marker: Path) -> Path:
    """A model directory whose auto_map points at .py files that write ``marker`` on import.

    The directory name is unique: transformers names the imported module after it.
    """
    path = root / f"custom_{uuid.uuid4().hex[:10]}"
    path.mkdir()
    for module in ("configuration_marker", "modeling_marker"):
        (path / f"{module}.py").write_text(CODE.format(marker=str(marker)))
    auto_map = {"AutoConfig": "configuration_marker.MarkerConfig"}
    auto_map |= {k: "modeling_marker.MarkerModel" for k in ("AutoModel", "AutoModelForMaskedLM")}
    config = {"model_type": "marker_model", "architectures": ["MarkerModel"], "auto_map": auto_map}
    (path / "config.json").write_text(json.dumps(config))
    return path


def entry_points(path: str, out: str, flag: list[str]) -> dict:
    """Every entry point, loading ``path``; ``flag`` is the opt-in flag pair (or [])."""
    model_args = f"pretrained={path}" + (f",{flag[0][2:]}={flag[1]}" if flag else "")
    lm_eval_args = ["--model", "a2d_mdlm", "--model_args", model_args, "--tasks", "x"]

    def harness():
        from a2dkit.eval.harness import MDLMEvalHarness

        key = {flag[0][2:]: True} if flag else {}
        return MDLMEvalHarness(pretrained=path, device="cpu", **key)

    model = ["--model_name_or_path", path, *flag]
    data = ["--dataset_args", "a2dkit/synthetic", "--output_dir", out]
    return {
        "sample": lambda: sample.main([*model, *FLAGS_SAMPLE]),
        "chat": lambda: chat.main([*model, *FLAGS]),
        "mdlm.sample": lambda: mdlm_sample.cli([*model, *FLAGS_SAMPLE]),
        "bd3lm.chat": lambda: bd3lm_chat.cli([*model, *FLAGS]),
        "testing": lambda: cli_contract.main(model),
        "convert": lambda: cli_convert.main([*model, "--output_dir", out]),
        "train": lambda: train.main("mdlm", "pt", [*model, *data]),
        "eval": lambda: cli_eval.main(lm_eval_args),
        "lm_eval model": harness,
    }


ENTRY_POINTS = list(entry_points("x", "y", []))


@pytest.fixture
def says_yes(monkeypatch):
    """'y' to any question asked on stdin (chat reads its conversation from the same stdin)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 4))
    monkeypatch.setattr(sys, "argv", ["pytest"])  # a2dkit.cli.eval.main rewrites sys.argv


def test_control_the_directory_runs_its_code_when_transformers_may_prompt(tmp_path, says_yes):
    from transformers import AutoConfig

    marker = tmp_path / "marker"
    AutoConfig.from_pretrained(make_custom_code_dir(tmp_path, marker))  # no flag: it asks stdin
    assert marker.exists()  # 'y' was taken as consent: the threat the entry points must resist


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_no_entry_point_runs_model_code_without_the_flag(name, tmp_path, says_yes):
    marker = tmp_path / "marker"
    path = str(make_custom_code_dir(tmp_path, marker))
    with pytest.raises(loading.RemoteCodeError, match=r"--trust_remote_code True"):
        entry_points(path, str(tmp_path / "out"), [])[name]()
    assert not marker.exists()


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_with_trust_remote_code_the_code_does_run(name, tmp_path, says_yes):
    marker = tmp_path / "marker"
    path = str(make_custom_code_dir(tmp_path, marker))
    with contextlib.suppress(Exception):  # the marker model is no A2D model: it fails later
        entry_points(path, str(tmp_path / "out"), ["--trust_remote_code", "True"])[name]()
    assert marker.exists()


def test_chat_with_y_piped_on_stdin_exits_2_with_one_line(tmp_path):
    marker = tmp_path / "marker"
    path = make_custom_code_dir(tmp_path, marker)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "A2DKIT_DEBUG": "0"}
    cmd = [sys.executable, "-m", "a2dkit.cli.chat", "--model_name_or_path", str(path)]
    proc = subprocess.run(cmd, input="y\nhello\n", capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--trust_remote_code" in lines[0]
    assert not marker.exists()


# --- pickle-only checkpoints ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pickle_dir(small_tokenizer, tmp_path_factory):
    """A converted tiny A2D model saved as pytorch_model.bin only (a pickle)."""
    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("llama", tok, seed=5), tok)
    path = tmp_path_factory.mktemp("a2d-pickle")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    (path / "model.safetensors").unlink()
    return str(path)


# convert refuses an already converted model; its pickle refusal is in test_convert.py
@pytest.mark.parametrize("name", [n for n in ENTRY_POINTS if n != "convert"])
def test_a_pickle_only_checkpoint_is_refused_everywhere(name, pickle_dir, tmp_path, says_yes):
    with pytest.raises(ValueError, match=r"pickle weights.*--allow_pickle_weights True"):
        entry_points(pickle_dir, str(tmp_path / "out"), [])[name]()


@pytest.mark.parametrize("name", ["sample", "testing"])
def test_with_allow_pickle_weights_it_loads(name, pickle_dir, tmp_path, capsys):
    flag = ["--allow_pickle_weights", "True"]
    assert entry_points(pickle_dir, str(tmp_path / "out"), flag)[name]() == 0
    assert ("[Sample 0]" if name == "sample" else "PASS") in capsys.readouterr().out
