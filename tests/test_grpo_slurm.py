"""slurm/grpo_tiny_a2d_{mdlm,bd3lm}.sh: DRY_RUN=1 checks the GRPO recipe on the shared launcher."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import make_tiny_ar

from a2dkit import convert

REPO = Path(__file__).resolve().parents[1]


def _dry_run(script: str, tmp_path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "DRY_RUN": "1", "OUTPUT_DIR": str(tmp_path / "out"), **env}
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
