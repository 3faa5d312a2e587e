"""The scale table: names, invariants between fields, and the configs/flags built from it."""

import dataclasses
import json
from pathlib import Path

import pytest

from a2dkit import tutorial
from a2dkit.tutorial import runs


def test_four_scales_in_order_and_each_named_after_its_key():
    assert list(tutorial.SCALES) == ["smoke", "laptop", "warmup", "full"]
    assert all(cfg.name == name for name, cfg in tutorial.SCALES.items())


def test_get_scale_is_case_insensitive_and_rejects_unknown_names_listing_valid_ones():
    assert tutorial.get_scale("Smoke") is tutorial.SCALES["smoke"]
    with pytest.raises(ValueError, match=r"'tiny'.*\['smoke', 'laptop', 'warmup', 'full'\]"):
        tutorial.get_scale("tiny")
    with pytest.raises(TypeError, match="str"):
        tutorial.get_scale(1)


@pytest.mark.parametrize("name", list(tutorial.SCALES))
def test_block_size_divides_the_lengths(name):
    cfg = tutorial.get_scale(name)
    assert cfg.max_length % cfg.block_size == 0
    assert cfg.max_new_tokens % cfg.block_size == 0


def test_smoke_and_laptop_are_offline_and_on_cpu():
    smoke, laptop, warmup, full = tutorial.SCALES.values()
    assert smoke.is_tiny and smoke.use_cpu and smoke.world_size == 1
    assert laptop.source_model == tutorial.SMOLLM2 == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert not laptop.is_tiny and laptop.use_cpu and laptop.dtype == "float32"
    assert not warmup.is_tiny and warmup.source_model == full.source_model == "Qwen/Qwen3-0.6B"


def test_laptop_source_resolves_offline_through_the_asset(monkeypatch, tmp_path):
    from a2dkit.tutorial import assets

    calls = []
    monkeypatch.setattr(assets, "smollm2_checkpoint", lambda: calls.append(1) or tmp_path)
    assert tutorial.get_scale("laptop").source_name_or_path() == str(tmp_path) and calls == [1]
    assert tutorial.get_scale("warmup").source_name_or_path() == "Qwen/Qwen3-0.6B"  # a Hub id


def test_block_size_must_divide_the_sft_answer_length():
    with pytest.raises(ValueError, match="block_size=16 must divide sft_max_new_tokens=20"):
        tutorial.get_scale("laptop").replace(sft_max_new_tokens=20)


def test_full_matches_the_tiny_a2d_recipe_global_batch():
    full = tutorial.get_scale("full")
    # dLLM README: 8 nodes x 8 GPUs, per-device batch 16, gradient accumulation 2 -> 2048
    assert full.world_size == 64 and full.global_batch_size == 16 * 2 * 64 == 2048
    assert full.sft_dataset_args == tutorial.TINY_A2D_MIXTURE


def test_scale_configs_are_frozen_and_replace_checks_field_names():
    cfg = tutorial.get_scale("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.block_size = 8
    assert cfg.replace(block_size=8).block_size == 8 and cfg.block_size == 16
    with pytest.raises(TypeError, match=r"\['blocksize'\].*block_size"):
        cfg.replace(blocksize=8)


def test_block_size_that_does_not_divide_max_length_is_refused():
    with pytest.raises(ValueError, match=r"block_size=12 must divide max_length=64.*\[1, 2, 4"):
        tutorial.get_scale("smoke").replace(block_size=12)


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_training_args_carry_the_scale_sizes(algo, tmp_path):
    cfg = tutorial.get_scale("smoke")
    args = cfg.training_args(algo, tmp_path, max_steps=3)
    assert args.max_steps == 3 and args.per_device_train_batch_size == cfg.batch_size
    assert args.learning_rate == cfg.learning_rate and args.use_cpu
    assert getattr(args, "block_size", cfg.block_size) == cfg.block_size
    with pytest.raises(ValueError, match="algo='ar'"):
        cfg.training_args("ar", tmp_path)


def test_cli_flags_reproduce_the_warmup_readme_command():
    flags = tutorial.get_scale("warmup").cli_flags("bd3lm")
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs["--dataset_args"] == "Trelis/tiny-shakespeare" and pairs["--text_field"] == "Text"
    assert pairs["--max_length"] == "128" and pairs["--num_train_epochs"] == "20"
    assert pairs["--learning_rate"] == "0.0001" and pairs["--block_size"] == "32"
    assert pairs["--per_device_train_batch_size"] == "16"


def test_full_sft_lengths_follow_the_recipe():
    full = tutorial.get_scale("full")
    flags = {a: full.cli_flags(a, sft=True) for a in ("mdlm", "bd3lm")}
    lengths = {a: f[f.index("--max_length") + 1] for a, f in flags.items()}
    assert lengths == {"mdlm": "1024", "bd3lm": "512"}


def test_tiny_ar_args_default_to_a_cache_dir_named_after_the_dims(tmp_path, monkeypatch):
    monkeypatch.setenv("A2DKIT_CACHE", str(tmp_path))
    args = tutorial.get_scale("smoke").tiny_ar_args()
    assert args.output_dir.startswith(str(tmp_path)) and "h64-l2-v500" in args.output_dir
    assert (args.hidden_size, args.num_hidden_layers, args.vocab_size) == (64, 2, 500)


def test_training_log_reads_the_loss_records_of_the_final_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("A2DKIT_RUNS", str(tmp_path))
    cfg = tutorial.get_scale("smoke")
    with pytest.raises(FileNotFoundError, match="load_diffusion_model"):
        tutorial.training_log(cfg, "bd3lm")
    final = cfg.output_dir("bd3lm-pt", "checkpoint-final")
    final.mkdir(parents=True)
    records = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}, {"step": 2, "train_runtime": 3}]
    (final / "trainer_state.json").write_text(json.dumps({"log_history": records}))
    assert tutorial.training_log(cfg, "bd3lm") == records[:2]


def test_cached_runs_are_retrained_only_when_their_flags_change(
    tmp_path, monkeypatch, fresh_tokenizer
):
    """load_diffusion_model keys its cache by the CLI flags (and code): a stale run is redone."""
    import shutil

    from conftest import make_tiny_ar

    from a2dkit import convert
    from a2dkit.cli.mdlm import pt

    a2d_dir = tmp_path / "a2d"
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", fresh_tokenizer), fresh_tokenizer)
    model.save_pretrained(a2d_dir)
    tok.save_pretrained(a2d_dir)

    monkeypatch.setenv("A2DKIT_RUNS", str(tmp_path))
    monkeypatch.setattr(runs, "load_source_model", lambda cfg: None)
    calls = []

    def fake_cli(flags):  # stands in for training: copies a converted model to checkpoint-final
        calls.append(flags)
        out = flags[flags.index("--output_dir") + 1]
        shutil.copytree(a2d_dir, f"{out}/checkpoint-final")
        return 0

    monkeypatch.setattr(pt, "cli", fake_cli)
    cfg = tutorial.get_scale("smoke")
    for run in (cfg, cfg, cfg.replace(mdlm_steps=cfg.mdlm_steps + 1)):
        tutorial.load_diffusion_model(run, "mdlm")
    assert len(calls) == 2 and calls[0] != calls[1]
    assert ["--max_steps", str(cfg.mdlm_steps + 1)] == calls[1][calls[1].index("--max_steps") :][:2]
    # a shorter run (GRPO's start, notebook 10) has its own directory and its own last --max_steps
    tutorial.load_diffusion_model(cfg, "mdlm", max_steps=7)
    assert len(calls) == 3 and "mdlm-pt-s7" in calls[2][calls[2].index("--output_dir") + 1]
    assert max(i for i, f in enumerate(calls[2]) if f == "--max_steps") + 1 == calls[2].index("7")


@pytest.mark.parametrize("name", ["smoke", "laptop", "warmup"])
def test_grpo_args_carry_the_scale_sizes_and_valid_rewards(name, tmp_path):
    import torch

    from a2dkit.grpo import rewards, tasks

    cfg = tutorial.get_scale(name)
    no_gpu = {} if torch.cuda.is_available() else {"bf16": False}  # warmup's bf16 needs a GPU
    args = cfg.grpo_args("bd3lm", tmp_path, max_steps=3, **no_gpu)
    assert args.max_steps == 3 and args.learning_rate == cfg.grpo_learning_rate
    assert args.num_generations == cfg.grpo_num_generations
    assert args.per_device_train_batch_size % args.num_generations == 0
    assert args.max_completion_length == args.steps == cfg.grpo_max_new_tokens
    assert args.max_completion_length % args.block_size == 0
    assert args.beta == (0.0 if cfg.use_cpu else 0.04) and args.scale_rewards == "none"
    assert rewards.get_rewards(cfg.grpo_rewards) and cfg.grpo_dataset in tasks.TASKS
    with pytest.raises(ValueError, match="algo='ar'"):
        cfg.grpo_args("ar", tmp_path)


def test_smoke_mdlm_sft_rows_cover_the_whole_sampling_canvas():
    # positions past the EOS-filled SFT rows were never trained: the model fills them with
    # low-confidence junk, and threshold decoding then commits one token per step there
    from a2dkit import data
    from a2dkit.tutorial import tiny_tokenizer

    cfg = tutorial.get_scale("smoke")
    tok = tiny_tokenizer.load_tiny_tokenizer(cfg.tiny_vocab_size)
    test = data.load_dataset_args(cfg.sft_dataset_args)["test"]
    longest = max(map(len, data.chat_prompts(test, tok)))
    assert longest + max(cfg.max_new_tokens, cfg.sft_max_new_tokens) <= cfg.sft_max_length
    flags = cfg.cli_flags("mdlm", sft=True)
    assert flags[flags.index("--pad_to_max_length") + 1] == "True"
    assert "--pad_to_max_length" not in cfg.cli_flags("bd3lm", sft=True)
    assert "--pad_to_max_length" not in tutorial.get_scale("laptop").cli_flags("mdlm", sft=True)


def _pairs(flags: list[str]) -> dict[str, str]:
    return dict(zip(flags[::2], flags[1::2], strict=True))


def test_laptop_pretraining_right_shifts_and_nothing_else_does(tmp_path):
    laptop = tutorial.get_scale("laptop")
    mdlm, bd3lm = (_pairs(laptop.cli_flags(a)) for a in ("mdlm", "bd3lm"))
    for flags in (mdlm, bd3lm):
        assert flags["--right_shift_logits"] == "True" and flags["--learning_rate"] == "0.0003"
    for algo in ("mdlm", "bd3lm"):
        assert laptop.training_args(algo, tmp_path).right_shift_logits
    assert laptop.training_args("bd3lm", tmp_path).learning_rate == 3e-4
    for name in tutorial.SCALES:  # dLLM's default elsewhere, and for every SFT
        cfg = tutorial.get_scale(name)
        for algo in ("mdlm", "bd3lm"):
            assert "--right_shift_logits" not in cfg.cli_flags(algo, sft=True)
            if cfg.use_cpu:  # (GPU scales' bf16 arguments cannot be built on this CPU)
                assert not cfg.training_args(algo, tmp_path, sft=True).right_shift_logits
            if name != "laptop":
                assert "--right_shift_logits" not in cfg.cli_flags(algo)


def test_laptop_bd3lm_pretrains_in_its_own_blocks_and_sft_keeps_block_size(tmp_path):
    laptop = tutorial.get_scale("laptop")
    assert laptop.pretrain_block_size == laptop.pt_block_size == 4 != laptop.block_size
    assert _pairs(laptop.cli_flags("bd3lm"))["--block_size"] == "4"
    assert laptop.training_args("bd3lm", tmp_path).block_size == 4
    sft = str(laptop.block_size)
    assert _pairs(laptop.cli_flags("bd3lm", sft=True))["--block_size"] == sft
    assert laptop.training_args("bd3lm", tmp_path, sft=True).block_size == laptop.block_size
    grpo_block = min(laptop.block_size, laptop.grpo_max_new_tokens)  # GRPO starts from SFT
    assert laptop.grpo_args("bd3lm", tmp_path).block_size == grpo_block
    for name in ("smoke", "warmup", "full"):  # unset: pretraining uses block_size
        cfg = tutorial.get_scale(name)
        assert cfg.pt_block_size is None and cfg.pretrain_block_size == cfg.block_size
        assert _pairs(cfg.cli_flags("bd3lm"))["--block_size"] == str(cfg.block_size)


def test_bad_shift_algorithms_and_sampler_blocks_are_refused():
    smoke = tutorial.get_scale("smoke")
    with pytest.raises(ValueError, match=r"\['ar'\] are not algorithms"):
        smoke.replace(pt_right_shift_logits=("mdlm", "ar"))
    with pytest.raises(ValueError, match="sampler_block_size=5 must be None or a positive divisor"):
        smoke.replace(sampler_block_size=5)
    assert smoke.replace(sampler_block_size=8).sampler_block_size == 8
    for bad in (0, 3, 24):  # 24 divides neither max_length=64 nor max_new_tokens=32
        with pytest.raises(ValueError, match=f"pt_block_size={bad} must be None or a positive"):
            smoke.replace(pt_block_size=bad)
    assert smoke.replace(pt_block_size=8).pretrain_block_size == 8


def test_bd3lm_learning_rate_overrides_only_bd3lm_pretraining(tmp_path):
    smoke = tutorial.get_scale("smoke")
    assert all(s.bd3lm_learning_rate is None for s in tutorial.SCALES.values())  # unset: shared lr
    own = smoke.replace(bd3lm_learning_rate=2.5e-4)
    assert own.training_args("bd3lm", tmp_path).learning_rate == 2.5e-4
    assert _pairs(own.cli_flags("bd3lm"))["--learning_rate"] == "0.00025"
    assert own.training_args("mdlm", tmp_path).learning_rate == smoke.learning_rate != 2.5e-4
    for algo in ("mdlm", "bd3lm"):  # SFT keeps sft_learning_rate
        assert own.training_args(algo, tmp_path, sft=True).learning_rate == smoke.sft_learning_rate


def test_the_run_cache_key_hashes_whole_package_directories(monkeypatch):
    from a2dkit.tutorial import runs

    files = {f.relative_to(runs.PACKAGE).as_posix() for f in runs._training_code_files()}
    for path in ("training/trainers.py", "training/setup.py", "data/loaders.py", "cli/train.py",
                 "diffusion/losses.py", "convert/core.py", "models/forward.py"):  # fmt: skip
        assert path in files
    assert not any(f.startswith(("grpo/", "viz/", "tutorial/")) for f in files)
    before = runs._training_code_digest()
    real = Path.read_bytes
    changed = runs.PACKAGE / "data" / "preprocess.py"
    monkeypatch.setattr(Path, "read_bytes", lambda p: real(p) + (b"#" if p == changed else b""))
    assert runs._training_code_digest() != before  # an edit anywhere in data/ retrains
