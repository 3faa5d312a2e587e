"""Bad input gets one actionable line (``error: ...``, exit 2), raised before any model loads
when the check needs no model; every case of issue 16's "Errors" list."""

from __future__ import annotations

import copy
import io
import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_ar

import a2dkit
from a2dkit import convert
from a2dkit.cli import chat, sample, train
from a2dkit.cli import contract as cli_contract
from a2dkit.cli import convert as cli_convert
from a2dkit.cli import eval as cli_eval
from a2dkit.cli.errors import UsageError, run_cli
from a2dkit.models import loading
from a2dkit.samplers import BD3LMSampler, MDLMSampler
from a2dkit.training import config

MISSING = "/no/such/a2d-model"
NOT_FOUND = r"model path '{}' not found \(a local directory with config.json, or a Hub id\)"
FLAGS = ["--max_new_tokens", "8", "--steps", "8", "--block_size", "4"]


@pytest.fixture(scope="module")
def dirs(small_tokenizer, tmp_path_factory):
    """A converted A2D checkpoint, the unconverted AR one, and both models."""
    root = tmp_path_factory.mktemp("models")
    tok = copy.deepcopy(small_tokenizer)
    ar = make_tiny_ar("llama", tok, seed=7)
    ar.save_pretrained(root / "ar")
    tok.save_pretrained(root / "ar")
    a2d, tok, _ = convert.to_diffusion(ar, tok)
    a2d.save_pretrained(root / "a2d")
    tok.save_pretrained(root / "a2d")
    return {"a2d": str(root / "a2d"), "ar": str(root / "ar"), "model": a2d.eval(), "tok": tok}


# --- run_cli: one line, exit 2; a traceback only with A2DKIT_DEBUG=1 ------------------------------


def _raises(err: BaseException):
    def main(argv):
        raise err

    return main


def test_run_cli_prints_one_line_and_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("A2DKIT_DEBUG", raising=False)
    assert run_cli(_raises(UsageError("steps=0 must be\n  a positive integer"))) == 2
    assert capsys.readouterr().err == "error: steps=0 must be; a positive integer\n"
    assert run_cli(_raises(TypeError("inputs is a str"))) == 2
    assert run_cli(lambda argv: 3) == 3 and run_cli(lambda argv: None) == 0  # codes pass through
    with pytest.raises(RuntimeError):  # a bug is not a usage error: its traceback stays
        run_cli(_raises(RuntimeError("bug")))


def test_run_cli_keeps_the_traceback_under_a2dkit_debug(monkeypatch):
    monkeypatch.setenv("A2DKIT_DEBUG", "1")
    with pytest.raises(ValueError, match="bad"):
        run_cli(_raises(ValueError("bad")))


@pytest.mark.parametrize("main", [lambda argv: 0, _raises(UsageError("bad")), _raises(KeyError)])
def test_run_cli_destroys_the_launched_process_group(main, tmp_path, monkeypatch):
    """A gloo rank that exits with its group alive can SIGABRT in teardown (it failed a CI run of
    the two-process lm-eval launch): run_cli destroys the group, on success and on error."""
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        assert dist.is_initialized()  # the control: the group is alive before run_cli
        try:
            run_cli(main)
        except KeyError:
            pass  # not a usage error: it propagates, and the group still goes
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_python_m_exits_2_with_one_line_and_no_traceback():
    cmd = [sys.executable, "-m", "a2dkit.contract", "--model_name_or_path", MISSING]
    proc = subprocess.run(cmd, env={**os.environ, "A2DKIT_DEBUG": "0"}, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: model path") and "Traceback" not in proc.stderr


def _main_argv(module: str, out: str) -> list[str]:
    if module in ("a2dkit.eval", "a2dkit.cli.eval"):
        return ["--model", "a2d_mdlm", "--model_args", f"pretrained={MISSING}", "--tasks", "x"]
    extra = {"convert": ["--output_dir", out], "pt": ["--output_dir", out, "--dataset_args", "a"]}
    extra["sft"] = extra["pt"]
    return ["--model_name_or_path", MISSING, *extra.get(module.rsplit(".", 1)[1], [])]


MAIN_MODULES = [
    *(f"a2dkit.cli.{m}" for m in ("sample", "chat", "mdlm.sample", "mdlm.chat", "bd3lm.sample")),
    *(f"a2dkit.cli.{m}" for m in ("bd3lm.chat", "mdlm.pt", "mdlm.sft", "bd3lm.pt", "bd3lm.sft")),
    *("a2dkit.contract", "a2dkit.convert", "a2dkit.eval"),  # the documented commands
    *("a2dkit.cli.contract", "a2dkit.cli.convert", "a2dkit.cli.eval"),
]


def test_every_main_lives_in_cli_and_every_command_goes_through_run_cli():
    package = Path(a2dkit.__file__).parent
    mains = {p.relative_to(package).as_posix() for p in package.rglob("*.py")
             if "\ndef main(" in p.read_text()}  # fmt: skip
    assert mains and all(m.startswith("cli/") for m in mains), sorted(mains)
    commands = [p for p in package.rglob("*.py") if 'if __name__ == "__main__"' in p.read_text()]
    commands += list(package.rglob("__main__.py"))
    assert len(commands) >= 20  # the ten dLLM entry files among them (negative control)
    bypass = [p.name for p in commands if "run_cli" not in p.read_text() and
              "import main, run" not in p.read_text()]  # fmt: skip
    assert not bypass, f"commands that do not report through run_cli: {bypass}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # runpy re-runs an imported module
@pytest.mark.parametrize("module", MAIN_MODULES)
def test_every_python_m_entry_point_goes_through_run_cli(module, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("A2DKIT_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", [module, *_main_argv(module, str(tmp_path))])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module(module, run_name="__main__")
    assert exited.value.code == 2
    reason = "(a local directory with config.json, or a Hub id): no such directory"
    assert capsys.readouterr().err == f"error: model path '{MISSING}' not found {reason}\n"


# --- missing paths, unconverted models, corrupt configs, cached Hub ids ---------------------------


@pytest.mark.parametrize("entry", ["testing", "eval", "sample", "train", "convert"])
def test_a_missing_path_is_named(entry, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest"])  # a2dkit.cli.eval.main rewrites sys.argv
    model, out = ["--model_name_or_path", MISSING], ["--output_dir", str(tmp_path)]
    run = {
        "testing": lambda: cli_contract.main(model),
        "eval": lambda: cli_eval.main(["--model", "a2d_bd3lm", "--model_args",
                                       f"pretrained={MISSING}", "--tasks", "x"]),
        "sample": lambda: sample.main(model),
        "train": lambda: train.main("mdlm", "pt", [*model, "--dataset_args", "a", *out]),
        "convert": lambda: cli_convert.main([*model, *out]),
    }  # fmt: skip
    with pytest.raises(loading.ModelPathError, match=NOT_FOUND.format(MISSING)):
        run[entry]()


def test_a_directory_without_config_json_is_named(tmp_path):
    with pytest.raises(loading.ModelPathError, match=r"has no config.json"):
        cli_contract.main(["--model_name_or_path", str(tmp_path)])


def test_an_unconverted_model_is_refused_with_the_convert_command(dirs, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest"])
    hint = r"not an A2D model: .*model_type='llama'.*convert it first with python -m a2dkit.convert"
    with pytest.raises(loading.NotA2DModelError, match=hint):
        cli_contract.main(["--model_name_or_path", dirs["ar"]])
    with pytest.raises(loading.NotA2DModelError, match=hint):
        cli_eval.main(["--model", "a2d_mdlm", "--model_args", f"pretrained={dirs['ar']}"])


def test_a_corrupt_config_names_its_path(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": ')
    with pytest.raises(ValueError, match=rf"{tmp_path}/config.json' is not valid JSON"):
        sample.main(["--model_name_or_path", str(tmp_path)])


def test_truncated_weights_name_the_checkpoint(dirs, tmp_path):
    for f in Path(dirs["a2d"]).iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"")  # cut off mid-save, or a full disk
    with pytest.raises(ValueError, match=rf"model '{tmp_path}': its weights could not be read"):
        cli_contract.main(["--model_name_or_path", str(tmp_path)])


def _fake_hub_cache(root: Path, repo_id: str, files_from: str) -> None:
    """The HF cache layout (refs/main -> snapshots/<commit>/) holding a local checkpoint."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in Path(files_from).iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())


def test_a_cached_hub_id_loads_offline(dirs, tmp_path, monkeypatch, capsys):
    _fake_hub_cache(tmp_path, "a2dkit-test/tiny-a2d", dirs["a2d"])
    _fake_hub_cache(tmp_path, "a2dkit-test/tiny-ar", dirs["ar"])
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sample.main(["--model_name_or_path", "a2dkit-test/tiny-a2d", *FLAGS]) == 0
    assert "[Sample 0]" in capsys.readouterr().out
    assert convert.detect("a2dkit-test/tiny-ar").supported
    with pytest.raises(loading.ModelPathError, match=r"offline.*not in the cache"):
        sample.main(["--model_name_or_path", "a2dkit-test/never-cached"])


# --- sampling flags: checked before the model loads (chat: before the first message) -------------


BAD_SAMPLING = [
    (["--temperature", "nan"], r"temperature=nan must be a finite number >= 0"),
    (["--temperature", "inf"], r"temperature=inf must be a finite number >= 0"),
    (["--temperature", "-1"], r"temperature=-1.0 must be a finite number >= 0"),
    (["--cfg_scale", "inf"], r"cfg_scale=inf must be a finite number >= 0"),
    (["--threshold", "1.5"], r"threshold=1.5 must lie in \(0, 1\]"),
    (["--steps", "0"], r"steps=0 must be a positive integer"),
    (["--steps", "1", "--max_new_tokens", "8", "--block_size", "4"], r"steps=1 must be >= the nu"),
    (["--prompts", ""], r"--prompts \[''\] holds no text"),
    (["--prompts", " || "], r"holds no text"),
]


@pytest.mark.parametrize("flags, message", BAD_SAMPLING)
def test_bad_sampling_flags_fail_before_the_model_loads(flags, message):
    with pytest.raises(ValueError, match=message):  # MISSING would fail only once loading starts
        sample.main(["--model_name_or_path", MISSING, *flags])


@pytest.mark.parametrize("flags, message", BAD_SAMPLING[:7])
def test_chat_checks_its_flags_before_the_first_message(dirs, flags, message, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    with pytest.raises(ValueError, match=message):
        chat.main(["--model_name_or_path", dirs["a2d"], *flags])
    assert sys.stdin.read() == "hello\n" and "user>" not in capsys.readouterr().out


@pytest.mark.parametrize("value", [math.nan, math.inf, -0.5])
def test_the_sampler_api_refuses_a_non_finite_temperature(dirs, value):
    sampler = MDLMSampler(dirs["model"], dirs["tok"])
    with pytest.raises(ValueError, match=r"temperature=.* must be a finite number >= 0"):
        sampler.sample([[1, 2]], temperature=value, max_new_tokens=4, steps=4)


BAD_PROMPTS = [
    ([[1, 2], [5, 10**6]], ValueError, r"inputs\[1\] holds token id 1000000 outside .*ids are 0"),
    ([[3, -1]], ValueError, r"inputs\[0\] holds token id -1 outside the vocabulary"),
    ([1, 2, 3], TypeError, r"flat list of ids .*pass a list of prompts"),
    ("ROMEO:", TypeError, r"inputs is a str .*tokenizer\(text\)\['input_ids'\]"),
    (["ROMEO:"], TypeError, r"inputs\[0\] is a str"),
    ([torch.tensor([1.0, 2.0])], TypeError, r"1-D integer tensor"),
    ([], TypeError, r"non-empty list"),
]


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
@pytest.mark.parametrize("inputs, error, message", BAD_PROMPTS)
def test_the_sampler_api_names_bad_prompts(dirs, sampler_cls, inputs, error, message):
    sampler = sampler_cls(dirs["model"], dirs["tok"])
    with pytest.raises(error, match=message):
        sampler.sample(inputs, max_new_tokens=4, steps=4, block_size=4)


def test_valid_prompts_still_sample(dirs):
    vocab = dirs["model"].config.vocab_size
    prompts = [[0, vocab - 1], torch.tensor([3, 4]), np.array([5, 6]), list(torch.tensor([7, 8]))]
    out = MDLMSampler(dirs["model"], dirs["tok"]).sample(prompts, max_new_tokens=4, steps=4)
    # positive control: the edge ids 0 and V - 1, tensors, arrays and 0-d tensors are accepted
    assert out.sequences[:, :2].tolist() == [[0, vocab - 1], [3, 4], [5, 6], [7, 8]]


# --- training: data flags before the model; one mask token for trainer and samplers --------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset_args", "a2dkit/synthetic[train:"], r"unclosed '\['"),
        (["--dataset_args", "a[weight:0.5]+b"], r"weights given for some datasets"),
        (["--dataset_args", "a", "--max_length", "30", "--block_size", "8"], r"block_size=8 must"),
    ],
)
def test_train_checks_data_flags_before_the_model_loads(flags, message, tmp_path):
    argv = ["--model_name_or_path", MISSING, "--output_dir", str(tmp_path), *flags]
    with pytest.raises(ValueError, match=message):
        train.main("bd3lm", "pt", argv)


def test_the_trainer_uses_the_tokenizers_mask_token_or_refuses(dirs, small_tokenizer, tmp_path):
    from a2dkit.training.trainers import MDLMTrainer

    args = config.MDLMConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    model = copy.deepcopy(dirs["model"])
    assert MDLMTrainer(model=model, args=args, processing_class=dirs["tok"]).mask_token_id == (
        dirs["tok"].mask_token_id
    )  # positive control: a converted model trains
    no_mask = copy.deepcopy(small_tokenizer)  # the samplers refuse this tokenizer too, alike
    refusals = [lambda m: MDLMTrainer(model=m, args=args, processing_class=no_mask),
                lambda m: MDLMSampler(m, no_mask), lambda m: BD3LMSampler(m, no_mask)]  # fmt: skip
    for refuse in refusals:  # converted, but the tokenizer lost <|mask|>: fix the tokenizer
        with pytest.raises(ValueError, match=r"has no mask token, but the model was converted"
                           r".*load the tokenizer saved beside the converted model"):  # fmt: skip
            refuse(model)
    unconverted = copy.deepcopy(model)
    unconverted.config.mask_token_id = None
    for refuse in refusals:  # never converted: convert it
        with pytest.raises(ValueError, match=r"not a converted A2D model; convert it first"):
            refuse(unconverted)
    model.config.mask_token_id = dirs["tok"].mask_token_id - 1
    with pytest.raises(ValueError, match=r"differs from model.config.mask_token_id"):
        MDLMTrainer(model=model, args=args, processing_class=dirs["tok"])


# --- convert: never into its own source -----------------------------------------------------------


def test_convert_refuses_its_source_directory_as_output(dirs, tmp_path):
    source = tmp_path / "ar"
    source.mkdir()
    for f in Path(dirs["ar"]).iterdir():
        (source / f.name).write_bytes(f.read_bytes())
    before = (source / "config.json").read_bytes()
    argv = ["--model_name_or_path", str(source), "--output_dir", f"{source}/."]
    argv += ["--overwrite", "True"]
    with pytest.raises(ValueError, match=r"is the source model's directory"):
        cli_convert.main(argv)
    assert (source / "config.json").read_bytes() == before
    assert json.loads(before)["model_type"] == "llama"


@pytest.mark.parametrize("command", ["sample", "chat", "train"])
def test_flash_attention_is_refused_in_one_line_before_any_model_loads(command, capsys):
    flags = ["--model_name_or_path", MISSING, "--attn_implementation", "flash_attention_2"]
    data = ["--output_dir", MISSING, "--dataset_args", "a2dkit/synthetic"]
    mains = {"sample": sample.main, "chat": chat.main,
             "train": lambda argv: train.main("mdlm", "pt", [*argv, *data])}  # fmt: skip
    assert run_cli(mains[command], flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: attn_implementation='flash_attention_2'")
    assert "causal-only" in err and MISSING not in err  # refused before the (missing) model
