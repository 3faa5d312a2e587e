"""Config dataclasses: dLLM flags parse, bad values are refused by name, resume resolution."""

import json

import pytest
from transformers import HfArgumentParser

from a2dkit.training import checkpoints
from a2dkit.training.checkpoints import resolve_resume_checkpoint
from a2dkit.training.config import BD3LMConfig, DataArguments, MDLMConfig, ModelArguments

README_FLAGS = [  # the dLLM A2D README's BD3LM pretraining command, verbatim flags
    "--model_name_or_path", "models/a2d/Qwen3-0.6B",
    "--dataset_args", "Trelis/tiny-shakespeare",
    "--text_field", "Text",
    "--insert_eos", "False",
    "--max_length", "128",
    "--learning_rate", "1e-4",
    "--num_train_epochs", "20",
    "--per_device_train_batch_size", "16",
    "--per_device_eval_batch_size", "16",
    "--gradient_accumulation_steps", "2",
    "--eval_steps", "0.1",
    "--save_steps", "0.1",
    "--block_size", "32",
    "--output_dir", "models/a2d/Qwen3-0.6B/bd3lm/tiny-shakespeare",
]  # fmt: skip


def test_the_readme_flags_parse_into_the_three_dataclasses():
    parser = HfArgumentParser((ModelArguments, DataArguments, BD3LMConfig))
    model_args, data_args, args = parser.parse_args_into_dataclasses(README_FLAGS)
    assert model_args.model_name_or_path == "models/a2d/Qwen3-0.6B"
    assert (data_args.text_field, data_args.insert_eos, data_args.max_length) == (
        "Text",
        False,
        128,
    )
    assert (args.block_size, args.gradient_accumulation_steps, args.save_steps) == (32, 2, 0.1)
    assert (args.time_epsilon, args.loss_norm_type, args.alpha_schedule) == (
        1e-3,
        "token",
        "linear",
    )


def test_mdlm_defaults_follow_dllm_and_hf(tmp_path):
    args = MDLMConfig(output_dir=str(tmp_path))
    assert args.report_to == [] and args.save_only_model is False  # "none" -> no integrations
    assert args.logging_steps == 10 and args.learning_rate == 1e-4
    assert args.loss_weight_type == "scheduler" and args.right_shift_logits is False
    assert args.remove_unused_columns is False and args.antithetic_t is False


def test_output_dir_is_required():
    with pytest.raises(ValueError, match="output_dir is required"):
        MDLMConfig()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss_norm_type": "tokens"}, r"loss_norm_type='tokens'.*'sequence'"),
        ({"loss_weight_type": "flat"}, r"loss_weight_type='flat'.*'uniform'"),
        ({"time_epsilon": 1.0}, r"time_epsilon=1.0 must lie in \[0, 1\)"),
        ({"time_epsilon": -0.1}, r"time_epsilon=-0.1"),
        ({"alpha_schedule": "cubic"}, r"alpha_schedule='cubic'.*'cosine'"),
        ({"resume_from_checkpoint": "/no/such/ckpt"}, r"resume_from_checkpoint='/no/such/ckpt'"),
    ],
)
def test_mdlm_config_names_the_bad_value_and_the_valid_ones(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MDLMConfig(output_dir=str(tmp_path), **kwargs)


def test_bd3lm_config_refuses_a_non_positive_block_size(tmp_path):
    with pytest.raises(ValueError, match="block_size=0 must be a positive integer"):
        BD3LMConfig(output_dir=str(tmp_path), block_size=0)
    with pytest.raises(TypeError, match="block_size must be an int"):
        BD3LMConfig(output_dir=str(tmp_path), block_size=2.5)


def test_model_and_data_arguments_refuse_bad_values():
    with pytest.raises(ValueError, match=r"dtype='fp8'.*'bfloat16'"):
        ModelArguments("m", dtype="fp8")
    with pytest.raises(ValueError, match=r"attn_implementation='flash_attention_2'.*'sdpa'"):
        ModelArguments("m", attn_implementation="flash_attention_2")
    with pytest.raises(ValueError, match="max_length=0"):
        DataArguments("Trelis/tiny-shakespeare", max_length=0)


def _checkpoint(root, step: int, complete: bool = True):
    path = root / f"checkpoint-{step}"
    path.mkdir()
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        checkpoints.mark_complete(path)  # the trainer's completion marker, written last
    return path


def test_resume_auto_picks_the_latest_complete_checkpoint(tmp_path):
    assert resolve_resume_checkpoint(tmp_path / "missing", "auto") is None
    assert resolve_resume_checkpoint(tmp_path, "auto") is None
    for step in (5, 20, 100):  # numeric order, not lexicographic ("100" < "20" as strings)
        _checkpoint(tmp_path, step)
    _checkpoint(tmp_path, 200, complete=False)  # cut off mid-save: no marker
    (tmp_path / "checkpoint-final").mkdir()
    for value in ("auto", "latest", True):
        assert resolve_resume_checkpoint(tmp_path, value) == str(tmp_path / "checkpoint-100")


def test_resume_explicit_path_and_none(tmp_path):
    path = _checkpoint(tmp_path, 3)
    assert resolve_resume_checkpoint(tmp_path, str(path)) == str(path)
    for value in (None, "", "none", False):
        assert resolve_resume_checkpoint(tmp_path, value) is None
    with pytest.raises(ValueError, match="is not a directory"):
        resolve_resume_checkpoint(tmp_path, str(tmp_path / "nope"))
