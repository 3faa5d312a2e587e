"""Bad input to the AR-preserving recipe flags of ``a2dkit.cli.{mdlm,bd3lm}.{pt,sft}``: one line
``error: ...`` and exit 2, before any model loads (issue 23's "Bad input" list)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.cli import train
from a2dkit.training.setup import check_teacher_tokenizer

MISSING = "/no/such/a2d-model"


@pytest.mark.parametrize(
    "algo, flags, message",
    [
        ("mdlm", ["--ar_loss_weight", "-0.5"], r"ar_loss_weight=-0.5 must be a finite number >= 0"),
        ("bd3lm", ["--block_size_schedule", "4:10,6"], r"block size 6, which does not divide"),
        ("bd3lm", ["--block_size_schedule", "cosine"], r"\('cosine'\) is not 'SIZE:END_STEP'"),
        ("bd3lm", ["--block_size_schedule", "wsd"], r"'wsd' is spread over .* --max_steps > 0"),
        ("mdlm", ["--attention_anneal_steps", "50", "--max_steps", "20"], r"longer than training"),
        ("mdlm", ["--distill_weight", "-1"], r"distill_weight=-1.0 must be a finite number >= 0"),
        ("mdlm", ["--position_mask_strength", "nan"], r"position_mask_strength=nan must be"),
        ("bd3lm", ["--full_mask_prob", "1.5"], r"full_mask_prob=1.5 must lie in \[0, 1\]"),
        ("bd3lm", ["--clean_stream", "tidar"],
         r"clean_stream='tidar' is not valid; choose one of \['block', 'causal'\]"),
        ("mdlm", ["--semi_ar_block_schedule", "grow"], r"needs --semi_ar_block_size > 0"),
        ("mdlm", ["--semi_ar_block_size", "-2"], r"semi_ar_block_size=-2 must be an integer"),
        ("mdlm", ["--semi_ar_block_size", "8", "--semi_ar_block_schedule", "3:2,8"],
         r"block size 3, which does not divide max_length=32"),
        ("bd3lm", ["--semi_ar_block_size", "8"], r"are MDLM's: BD3LM trains in blocks already"),
        ("mdlm", ["--lr_multipliers", "mlp"], r"'mlp' is not 'NAME_PATTERN=MULTIPLIER'"),
        ("mdlm", ["--lr_multipliers", "mlp=-1"], r"'mlp=-1' is not 'NAME_PATTERN=MULTIPLIER'"),
    ],
)
def test_bad_recipe_flags_are_refused_before_the_model_loads(algo, flags, message, tmp_path):
    argv = ["--model_name_or_path", MISSING, "--output_dir", str(tmp_path),
            "--dataset_args", "a2dkit/synthetic", "--max_length", "32", *flags]  # fmt: skip
    with pytest.raises(ValueError, match=message):
        train.main(algo, "pt", argv)


def test_python_m_prints_one_line_and_exits_2(tmp_path):
    cmd = [sys.executable, "-m", "a2dkit.cli.bd3lm.sft", "--model_name_or_path", MISSING,
           "--output_dir", str(tmp_path), "--dataset_args", "a2dkit/synthetic",
           "--max_length", "32", "--block_size_schedule", "4:10,6"]  # fmt: skip
    proc = subprocess.run(cmd, env={**os.environ, "A2DKIT_DEBUG": "0"}, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: block_size_schedule='4:10,6'")


@pytest.fixture(scope="module")
def models(small_tokenizer, tmp_path_factory):
    """A converted checkpoint without a manifest, and its AR source on disk."""
    root = tmp_path_factory.mktemp("recipe-models")
    tok = copy.deepcopy(small_tokenizer)
    ar = make_tiny_ar("llama", tok, seed=3)
    ar.save_pretrained(root / "ar")
    tok.save_pretrained(root / "ar")
    a2d, a2d_tok, _ = convert.to_diffusion(ar, copy.deepcopy(tok))
    a2d.save_pretrained(root / "a2d")
    a2d_tok.save_pretrained(root / "a2d")
    return {"ar": str(root / "ar"), "a2d": str(root / "a2d"), "tok": a2d_tok}


def test_distillation_without_a_source_model_is_refused(models, tmp_path, monkeypatch):
    import a2dkit.training.setup as setup

    def no_load(*a, **k):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(setup.convert_load, "load_model", no_load)
    argv = ["--model_name_or_path", models["a2d"], "--output_dir", str(tmp_path),
            "--dataset_args", "a2dkit/synthetic", "--distill_weight", "0.5"]  # fmt: skip
    with pytest.raises(ValueError, match=r"has no a2d_manifest.json naming it: pass "
                                         r"--teacher_model_name_or_path"):  # fmt: skip
        train.main("mdlm", "sft", argv)


def test_a_teacher_with_another_vocabulary_is_refused(models, small_tokenizer):
    other = copy.deepcopy(small_tokenizer)
    other.add_tokens(["<|tool_call|>", "<|tool_result|>"])  # two tokens the model never saw
    with pytest.raises(ValueError, match=r"teacher's tokenizer differs from the model's"):
        check_teacher_tokenizer(other, models["tok"])
    check_teacher_tokenizer(small_tokenizer, models["tok"])  # its own source: accepted


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_every_recipe_trains_through_the_cli_with_the_manifests_source(models, tmp_path, algo):
    """An AR model converted in memory is its own teacher; a converted checkpoint's teacher is
    the source its manifest names. The final config records the recipe."""
    manifest = {"source": {"name_or_path": models["ar"]}}
    (tmp_path / "a2d").mkdir()
    for f in os.listdir(models["a2d"]):
        os.symlink(os.path.join(models["a2d"], f), tmp_path / "a2d" / f)
    (tmp_path / "a2d" / "a2d_manifest.json").write_text(json.dumps(manifest))
    flags = ["--dataset_args", "a2dkit/synthetic[train:16]", "--max_length", "32",
             "--max_steps", "4", "--per_device_train_batch_size", "2", "--use_cpu", "True",
             "--disable_tqdm", "True", "--eval_strategy", "no", "--save_strategy", "no",
             "--ar_loss_weight", "0.3", "--distill_weight", "0.5", "--attention_anneal_steps",
             "2", "--position_mask_strength", "0.5", "--complementary_masking", "True",
             "--lr_multipliers", "mlp=0.5", "--full_mask_prob", "0.5"]  # fmt: skip
    if algo == "bd3lm":
        flags += ["--block_size", "8", "--block_size_schedule", "grow", "--clean_stream", "causal"]
    else:  # the AR source with a growing semi-AR block, the converted one with a constant one
        flags += ["--semi_ar_block_size", "8"]
    for model in (models["ar"], str(tmp_path / "a2d")):
        out = tmp_path / f"run-{len(os.listdir(tmp_path))}"
        argv = ["--model_name_or_path", model, "--output_dir", str(out), *flags]
        if algo == "mdlm" and model == models["ar"]:
            argv += ["--semi_ar_block_schedule", "grow"]
        assert train.main(algo, "sft", argv) == 0
        saved = json.loads((out / "checkpoint-final" / "config.json").read_text())
        assert saved["a2d_recipe"]["distill_weight"] == 0.5
        assert saved["a2d_recipe"]["full_mask_prob"] == 0.5
        if algo == "bd3lm":
            assert saved["a2d_recipe"]["block_size_schedule"][0] == [1, 1]
            assert saved["a2d_clean_stream"] == saved["a2d_recipe"]["clean_stream"] == "causal"
        else:
            growing = model == models["ar"]
            assert saved["a2d_recipe"]["semi_ar_block_schedule"][0] == ([1, 1] if growing
                                                                         else [8, None])
            assert saved["a2d_recipe"]["block_size"] == 8
