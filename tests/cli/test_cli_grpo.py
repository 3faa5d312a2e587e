"""python -m a2dkit.cli.{mdlm,bd3lm}.grpo end to end on CPU, LoRA in SFT, and the flag errors."""

import json

import pytest
import torch
from transformers import AutoModelForMaskedLM

import a2dkit  # noqa: F401  (registers the a2d-* model types)
from a2dkit.cli.bd3lm import grpo as bd3lm_grpo
from a2dkit.cli.mdlm import grpo as mdlm_grpo
from a2dkit.cli.mdlm import sft as mdlm_sft
from a2dkit.training import lora


def _grpo_flags(model_dir, out, *extra) -> list[str]:
    flags = dict(model_name_or_path=model_dir, output_dir=out, dataset="a2dkit/synthetic",
                 num_train_examples=8, max_steps=1, per_device_train_batch_size=4,
                 num_generations=4, max_completion_length=4, block_size=4, steps=4,
                 use_cpu=True, disable_tqdm=True, save_strategy="no", seed=0)  # fmt: skip
    return [x for k, v in flags.items() for x in (f"--{k}", str(v))] + list(extra)


@pytest.mark.parametrize(
    "cli, extra", [(mdlm_grpo.cli, ["--lora_r", "4", "--lora_alpha", "8"]), (bd3lm_grpo.cli, [])]
)
def test_grpo_entry_point_saves_the_final_model_and_reward_curve(a2d_dir, tmp_path, cli, extra):
    out = tmp_path / "grpo"
    assert cli(_grpo_flags(a2d_dir, out, *extra)) == 0
    final = out / "checkpoint-final"
    assert AutoModelForMaskedLM.from_pretrained(final).config.model_type == "a2d-qwen3"
    history = json.loads((final / "trainer_state.json").read_text())["log_history"]
    assert any("reward" in h for h in history)
    assert (out / lora.ADAPTER_DIR / "adapter_config.json").is_file() == bool(extra)


@pytest.mark.parametrize(
    "extra, error, match",
    [(["--dataset", "nope"], ValueError, "valid"),
     (["--p_mask_prompt", "2"], ValueError, "p_mask_prompt"),
     (["--num_generations", "3"], ValueError, "divisible"),
     (["--lora_r", "4", "--load_in_4bit", "True"], ValueError, "CUDA|bitsandbytes")],
)  # fmt: skip
def test_grpo_entry_point_refuses_bad_flags(a2d_dir, tmp_path, extra, error, match):
    with pytest.raises(error, match=match):
        mdlm_grpo.cli(_grpo_flags(a2d_dir, tmp_path / "out", *extra))


def test_sft_with_lora_saves_the_adapter_and_a_merged_model(a2d_dir, tmp_path):
    out = tmp_path / "sft"
    flags = ["--model_name_or_path", str(a2d_dir), "--output_dir", str(out), "--max_steps", "3",
             "--per_device_train_batch_size", "2", "--use_cpu", "True", "--disable_tqdm", "True",
             "--save_strategy", "no", "--learning_rate", "5e-2", "--max_length", "128",
             "--dataset_args", "a2dkit/synthetic[train:16,test:4,tasks:first]",
             "--lora_r", "4", "--lora_alpha", "8"]  # fmt: skip
    assert mdlm_sft.cli(flags) == 0
    assert (out / lora.ADAPTER_DIR / "adapter_config.json").is_file()
    merged = AutoModelForMaskedLM.from_pretrained(out / "checkpoint-final")
    base = AutoModelForMaskedLM.from_pretrained(a2d_dir)
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert (merged(x).logits - base(x).logits).abs().max() > 1e-4  # the adapter was merged
