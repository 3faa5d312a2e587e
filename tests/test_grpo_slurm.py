"""slurm/grpo_tiny_a2d_{mdlm,bd3lm}.sh: DRY_RUN=1 checks the GRPO recipe on the shared launcher."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_ar

from a2dkit import convert

REPO = Path(__file__).resolve().parents[1]


def _dry_run(script: str, tmp_path, **env) -> subprocess.CompletedProcess:
    # the recipe as shipped unless the test says otherwise (make exports A2DKIT_SCALE=smoke)
    full = {**os.environ, "DRY_RUN": "1", "OUTPUT_DIR": str(tmp_path / "out")}
    # PYTHON: this interpreter (a bare `python` on PATH need not have a2dkit; CI's has not)
    full |= {"A2DKIT_SCALE": "full", "MIN_FREE_GB": "0", "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(REPO / "slurm" / script)], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.fixture(scope="module")
def converted(tmp_path_factory, small_tokenizer):
    import copy

    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    path = tmp_path_factory.mktemp("a2d")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_grpo_recipe_dry_run_has_dllm_settings(converted, tmp_path):
    res = _dry_run("grpo_tiny_a2d_bd3lm.sh", tmp_path, MODEL=str(converted))
    assert res.returncode == 0, res.stderr
    launch = res.stderr.split("accelerate launch", 1)[1]
    assert "zero2.yaml" in launch and "-m a2dkit.cli.bd3lm.grpo" in launch
    for flag in ("--lora_r 128", "--num_iterations 12", "--p_mask_prompt 0.15", "--beta 0.04",
                 "--num_generations 6", "--block_size 32", "--steps 128"):  # fmt: skip
        assert flag in launch


def test_grpo_recipe_refuses_an_unknown_dataset(converted, tmp_path):
    res = _dry_run("grpo_tiny_a2d_mdlm.sh", tmp_path, MODEL=str(converted), DATASET="nope")
    assert res.returncode == 2 and "unknown dataset 'nope'" in res.stderr


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_grpo_smoke_scale_is_an_offline_cpu_recipe(converted, tmp_path, algo):
    """A2DKIT_SCALE=smoke takes slurm/grpo_smoke.env, not the SFT smoke recipe (whose dataset
    spec is no GRPO task): the offline countdown puzzles on 2 gloo CPU processes."""
    res = _dry_run(f"grpo_tiny_a2d_{algo}.sh", tmp_path, A2DKIT_SCALE="smoke",
                   MODEL=str(converted), CONVERTED=str(converted))  # fmt: skip
    assert res.returncode == 0, res.stderr
    launch = res.stderr.split("accelerate launch", 1)[1]
    assert "cpu.yaml" in launch and "--num_processes 2" in launch
    assert "--dataset a2dkit/countdown" in launch and "--use_cpu True" in launch
    # TRAIN_ARGS come after the recipe's flags, so the smoke adapter and iterations win
    assert launch.index("--lora_r 128") < launch.index("--lora_r 8")
    assert launch.index("--num_iterations 12") < launch.index("--num_iterations 2")
    sft = _dry_run(f"tiny_a2d_{algo}.sh", tmp_path, A2DKIT_SCALE="smoke", MODEL=str(converted),
                   CONVERTED=str(converted))  # fmt: skip
    assert sft.returncode == 0, sft.stderr  # negative control: the SFT smoke recipe is unchanged
    assert "a2dkit/synthetic[train:256,test:16]" in sft.stderr
