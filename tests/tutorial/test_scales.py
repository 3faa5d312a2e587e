"""The scale table: names, sections, invariants between fields, and the configs/flags built
from it."""

import dataclasses
import json
import re
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
def test_block_sizes_divide_the_lengths(name):
    cfg = tutorial.get_scale(name)
    assert cfg.pretrain.max_length % cfg.pretrain.block_size == 0
    assert cfg.sampling.max_new_tokens % cfg.pretrain.block_size == 0
    assert cfg.sft.max_new_tokens % cfg.sft.block_size == 0
    assert cfg.sampling.max_new_tokens % cfg.sft.block_size == 0
    assert cfg.sampling.max_new_tokens % (cfg.sampling.block_size or 1) == 0


def test_smoke_and_laptop_are_offline_and_on_cpu():
    smoke, laptop, warmup, full = tutorial.SCALES.values()
    assert smoke.is_tiny and smoke.hardware.use_cpu and smoke.world_size == 1
    assert laptop.source.model == tutorial.SMOLLM2 == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert not laptop.is_tiny and laptop.hardware.use_cpu and laptop.hardware.dtype == "float32"
    assert not warmup.is_tiny and warmup.source.model == full.source.model == "Qwen/Qwen3-0.6B"
    assert smoke.device == laptop.device == "cpu" and warmup.device == "cuda"


def test_laptop_source_resolves_offline_through_the_asset(monkeypatch, tmp_path):
    from a2dkit.tutorial import assets, scale_config

    assert scale_config.OFFLINE_SOURCES == {tutorial.SMOLLM2: assets.smollm2_checkpoint}
    calls = []
    fake = lambda: calls.append(1) or tmp_path  # noqa: E731
    monkeypatch.setitem(scale_config.OFFLINE_SOURCES, tutorial.SMOLLM2, fake)
    assert tutorial.get_scale("laptop").source_name_or_path() == str(tmp_path) and calls == [1]
    assert tutorial.get_scale("warmup").source_name_or_path() == "Qwen/Qwen3-0.6B"  # a Hub id


def test_sft_block_size_must_divide_the_answer_lengths():
    laptop = tutorial.get_scale("laptop")
    with pytest.raises(ValueError, match=r"sft\.block_size=16 must divide sft\.max_new_tokens=20"):
        laptop.replace(sft=dict(max_new_tokens=20))
    with pytest.raises(
        ValueError, match=r"sft\.block_size=16 must divide sampling\.max_new_tokens=24"
    ):
        laptop.replace(sampling=dict(max_new_tokens=24, block_size=None))


def test_full_matches_the_tiny_a2d_recipe_global_batch():
    full = tutorial.get_scale("full")
    # dLLM README: 8 nodes x 8 GPUs, per-device batch 16, gradient accumulation 2 -> 2048
    assert full.world_size == 64 and full.global_batch_size == 16 * 2 * 64 == 2048
    assert full.sft.dataset_args == tutorial.TINY_A2D_MIXTURE


def test_scale_configs_and_their_sections_are_frozen():
    cfg = tutorial.get_scale("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sft = cfg.sft
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sft.block_size = 8


def test_replace_changes_sections_by_dict_or_by_a_whole_section():
    cfg = tutorial.get_scale("smoke")
    new = cfg.replace(name="mine", sft=dict(steps=120, learning_rate=1e-4))
    assert (new.name, new.sft.steps, new.sft.learning_rate) == ("mine", 120, 1e-4)
    assert new.sft.replace(steps=2400, learning_rate=5e-4) == cfg.sft  # nothing else moved
    assert new.pretrain is cfg.pretrain and (cfg.name, cfg.sft.steps) == ("smoke", 2400)
    assert cfg.replace(sft=cfg.sft.replace(steps=3)).sft.steps == 3
    assert cfg.replace() == cfg


def test_replace_names_the_bad_section_or_field_and_lists_the_valid_ones():
    cfg = tutorial.get_scale("smoke")
    with pytest.raises(TypeError, match=r"ScaleConfig fields \['sfx'\]; valid: \['name'.*'sft'"):
        cfg.replace(sfx=dict(steps=3))
    with pytest.raises(TypeError, match=r"sft fields \['stepz'\]; valid: \[.*'steps'"):
        cfg.replace(sft=dict(stepz=3))
    with pytest.raises(TypeError, match=r"sft fields \['blocksize'\]; valid: .*'block_size'"):
        cfg.sft.replace(blocksize=8)
    # the old flat names point to their section
    homes = r"\['block_size'\].*pretrain, sampling, sft, retention: e\.g\. "
    with pytest.raises(TypeError, match=homes):
        cfg.replace(block_size=8)
    with pytest.raises(TypeError, match=r"did you mean replace\(sft=dict\(steps=\.\.\.\)\)"):
        cfg.replace(sft_steps=8)
    with pytest.raises(TypeError, match=r"sft= takes a dict of changed fields or a SFT, got GRPO"):
        cfg.replace(sft=cfg.grpo)
    with pytest.raises(TypeError, match="sft must be a SFT, got dict"):
        dataclasses.replace(cfg, sft={"steps": 3})


def test_pretraining_block_size_that_does_not_divide_max_length_is_refused():
    smoke = tutorial.get_scale("smoke")
    match = r"pretrain\.block_size=12 must divide pretrain\.max_length=64.*\[1, 2, 4"
    with pytest.raises(ValueError, match=match):
        smoke.replace(pretrain=dict(block_size=12))
    with pytest.raises(ValueError, match=r"pretrain\.block_size=0 must divide"):
        smoke.replace(pretrain=dict(block_size=0))


def test_one_block_size_per_meaning(tmp_path):
    """BD3LM pretraining (and sampling it), MDLM's semi-AR sampling and BD3LM SFT (and sampling,
    evaluating and GRPO-training it) each read their own block size; no flat ``block_size``."""
    for cfg in tutorial.SCALES.values():
        assert not hasattr(cfg, "block_size") and not hasattr(cfg, "pretrain_block_size")
        assert not hasattr(cfg, "sampler_block_size") and not hasattr(cfg, "pt_block_size")
        assert isinstance(cfg.pretrain.block_size, int) and isinstance(cfg.sft.block_size, int)
    smoke = tutorial.get_scale("smoke").replace(grpo=dict(max_new_tokens=32))  # > both blocks
    mine = smoke.replace(pretrain=dict(block_size=8), sampling=dict(block_size=4))
    assert _pairs(mine.cli_flags("bd3lm"))["--block_size"] == "8"
    assert mine.training_args("bd3lm", tmp_path).block_size == 8
    assert _pairs(mine.cli_flags("bd3lm", sft=True))["--block_size"] == "16"  # sft.block_size
    assert mine.grpo_args("bd3lm", tmp_path).block_size == 16
    mine = smoke.replace(sft=dict(block_size=8))
    assert _pairs(mine.cli_flags("bd3lm"))["--block_size"] == "16"  # pretrain.block_size
    assert _pairs(mine.cli_flags("bd3lm", sft=True))["--block_size"] == "8"
    assert mine.training_args("bd3lm", tmp_path, sft=True).block_size == 8
    assert mine.grpo_args("bd3lm", tmp_path).block_size == 8


ROOT = Path(__file__).resolve().parents[2]
CFG_ATTRIBUTE = re.compile(r"\bcfg\.(\w+)(?:\.(\w+))?")


def test_every_cfg_attribute_in_the_notebooks_and_benches_exists():
    """The chapters and benches read ``cfg.<section>.<field>``: a flat name of the old table
    (``cfg.block_size``, ``cfg.sft_steps``) or a typo fails here, not an hour into a run."""
    cfg, missing = tutorial.get_scale("smoke"), []
    for path in sorted([*ROOT.glob("notebooks/[0-9]*.py"), *ROOT.glob("bench/*.py")]):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for first, second in CFG_ATTRIBUTE.findall(line):
                value = getattr(cfg, first, missing)
                ok = value is not missing and (
                    not second or not dataclasses.is_dataclass(value) or hasattr(value, second)
                )
                if not ok:
                    missing.append(f"{path.name}:{n}: cfg.{first}{'.' + second if second else ''}")
    assert not missing, "\n".join(missing)
    assert CFG_ATTRIBUTE.findall("x = cfg.block_size, cfg.sft.stepz") == [
        ("block_size", ""),
        ("sft", "stepz"),
    ]  # the pattern sees both kinds of name (the negative control)


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_training_args_carry_the_scale_sizes(algo, tmp_path):
    cfg = tutorial.get_scale("smoke")
    args = cfg.training_args(algo, tmp_path, max_steps=3)
    assert args.max_steps == 3 and args.per_device_train_batch_size == cfg.pretrain.batch_size
    assert args.learning_rate == cfg.pretrain.learning_rate and args.use_cpu
    assert getattr(args, "block_size", cfg.pretrain.block_size) == cfg.pretrain.block_size
    sft = cfg.training_args(algo, tmp_path, sft=True)
    assert (sft.max_steps, sft.learning_rate) == (cfg.sft.steps, cfg.sft.learning_rate)
    assert getattr(sft, "block_size", cfg.sft.block_size) == cfg.sft.block_size
    with pytest.raises(ValueError, match="algo='ar'"):
        cfg.training_args("ar", tmp_path)
    with pytest.raises(ValueError, match="algo='ar'"):
        cfg.cli_flags("ar", sft=True)


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
    steps = cfg.pretrain.mdlm_steps + 1
    for run in (cfg, cfg, cfg.replace(pretrain=dict(mdlm_steps=steps))):
        tutorial.load_diffusion_model(run, "mdlm")
    assert len(calls) == 2 and calls[0] != calls[1]
    assert ["--max_steps", str(steps)] == calls[1][calls[1].index("--max_steps") :][:2]
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
    assert args.max_steps == 3 and args.learning_rate == cfg.grpo.learning_rate
    assert args.num_generations == cfg.grpo.num_generations
    assert args.per_device_train_batch_size % args.num_generations == 0
    assert args.max_completion_length == args.steps == cfg.grpo.max_new_tokens
    assert args.max_completion_length % args.block_size == 0
    assert args.beta == (0.0 if cfg.hardware.use_cpu else 0.04) and args.scale_rewards == "none"
    assert rewards.get_rewards(cfg.grpo.rewards) and cfg.grpo.dataset in tasks.TASKS
    with pytest.raises(ValueError, match="algo='ar'"):
        cfg.grpo_args("ar", tmp_path)


def test_smoke_mdlm_sft_rows_cover_the_whole_sampling_canvas():
    # positions past the EOS-filled SFT rows were never trained: the model fills them with
    # low-confidence junk, and threshold decoding then commits one token per step there
    from a2dkit import data
    from a2dkit.tutorial import tiny_tokenizer

    cfg = tutorial.get_scale("smoke")
    tok = tiny_tokenizer.load_tiny_tokenizer(cfg.source.tiny_vocab_size)
    test = data.load_dataset_args(cfg.sft.dataset_args)["test"]
    longest = max(map(len, data.chat_prompts(test, tok)))
    new = max(cfg.sampling.max_new_tokens, cfg.sft.max_new_tokens)
    assert longest + new <= cfg.sft.max_length
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
            if cfg.hardware.use_cpu:  # (GPU scales' bf16 arguments cannot be built on this CPU)
                assert not cfg.training_args(algo, tmp_path, sft=True).right_shift_logits
            if name != "laptop":
                assert "--right_shift_logits" not in cfg.cli_flags(algo)


def test_laptop_bd3lm_pretrains_in_its_own_blocks_and_sft_keeps_its_block_size(tmp_path):
    laptop = tutorial.get_scale("laptop")
    assert laptop.pretrain.block_size == laptop.sampling.block_size == 4 != laptop.sft.block_size
    assert _pairs(laptop.cli_flags("bd3lm"))["--block_size"] == "4"
    assert laptop.training_args("bd3lm", tmp_path).block_size == 4
    sft = str(laptop.sft.block_size)
    assert _pairs(laptop.cli_flags("bd3lm", sft=True))["--block_size"] == sft == "16"
    assert laptop.training_args("bd3lm", tmp_path, sft=True).block_size == laptop.sft.block_size
    grpo_block = min(laptop.sft.block_size, laptop.grpo.max_new_tokens)  # GRPO starts from SFT
    assert laptop.grpo_args("bd3lm", tmp_path).block_size == grpo_block
    for name in ("smoke", "warmup", "full"):  # the two BD3LM stages share their block size
        cfg = tutorial.get_scale(name)
        assert cfg.pretrain.block_size == cfg.sft.block_size and cfg.sampling.block_size is None
        assert _pairs(cfg.cli_flags("bd3lm"))["--block_size"] == str(cfg.pretrain.block_size)


def test_bad_shift_algorithms_and_sampler_blocks_are_refused():
    smoke = tutorial.get_scale("smoke")
    with pytest.raises(ValueError, match=r"pretrain\.right_shift_logits=.*\['ar'\] are not"):
        smoke.replace(pretrain=dict(right_shift_logits=("mdlm", "ar")))
    match = r"sampling\.block_size=5 must be None or a positive divisor"
    with pytest.raises(ValueError, match=match):
        smoke.replace(sampling=dict(block_size=5))
    assert smoke.replace(sampling=dict(block_size=8)).sampling.block_size == 8
    for bad in (0, 3, 24):  # 24 divides neither max_length=64 nor max_new_tokens=32
        with pytest.raises(ValueError, match=f"pretrain\\.block_size={bad} must divide"):
            smoke.replace(pretrain=dict(block_size=bad))
    # 32 divides max_length=64 but not sampling.max_new_tokens=16 (chapter 6 samples in it)
    match = r"pretrain\.block_size=32 must divide sampling\.max_new_tokens=16"
    with pytest.raises(ValueError, match=match):
        smoke.replace(pretrain=dict(block_size=32), sampling=dict(max_new_tokens=16),
                      sft=dict(block_size=8, max_new_tokens=16))  # fmt: skip
    assert smoke.replace(pretrain=dict(block_size=8)).pretrain.block_size == 8
    with pytest.raises(ValueError, match=r"sampling\.steps=0 must be > 0"):
        smoke.replace(sampling=dict(steps=0))
    with pytest.raises(ValueError, match=r"pretrain\.batch_size=0 must be > 0"):
        smoke.replace(pretrain=dict(batch_size=0))


def test_bd3lm_learning_rate_overrides_only_bd3lm_pretraining(tmp_path):
    smoke = tutorial.get_scale("smoke")
    assert all(s.pretrain.bd3lm_learning_rate is None for s in tutorial.SCALES.values())  # shared
    own = smoke.replace(pretrain=dict(bd3lm_learning_rate=2.5e-4))
    assert own.training_args("bd3lm", tmp_path).learning_rate == 2.5e-4
    assert _pairs(own.cli_flags("bd3lm"))["--learning_rate"] == "0.00025"
    lr = own.training_args("mdlm", tmp_path).learning_rate
    assert lr == smoke.pretrain.learning_rate != 2.5e-4
    for algo in ("mdlm", "bd3lm"):  # SFT keeps sft.learning_rate
        lr = own.training_args(algo, tmp_path, sft=True).learning_rate
        assert lr == smoke.sft.learning_rate


def test_the_run_cache_key_hashes_whole_package_directories(monkeypatch):
    from a2dkit.tutorial import runs

    files = {f.relative_to(runs.PACKAGE).as_posix() for f in runs._training_code_files()}
    for path in ("training/trainers/mdlm.py", "training/setup.py", "data/loaders.py",
                 "cli/train.py", "diffusion/losses.py", "convert/core.py",
                 "models/forward.py"):  # fmt: skip
        assert path in files
    assert not any(f.startswith(("grpo/", "viz/", "tutorial/")) for f in files)
    before = runs._training_code_digest()
    real = Path.read_bytes
    changed = runs.PACKAGE / "data" / "preprocess.py"
    monkeypatch.setattr(Path, "read_bytes", lambda p: real(p) + (b"#" if p == changed else b""))
    assert runs._training_code_digest() != before  # an edit anywhere in data/ retrains
