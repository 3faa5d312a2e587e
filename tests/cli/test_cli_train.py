"""The pt/sft entry points end to end on CPU with offline data, and their input errors."""

import pytest
from conftest import make_tiny_ar
from transformers import AutoModelForMaskedLM

import a2dkit  # noqa: F401  (registers the a2d-* model types)
from a2dkit.cli import train
from a2dkit.cli.bd3lm import sft as bd3lm_sft
from a2dkit.cli.mdlm import pt as mdlm_pt
from a2dkit.training import setup


def _flags(model_dir, out, *extra):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--output_dir",
        str(out),
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "2",
        "--use_cpu",
        "True",
        "--disable_tqdm",
        "True",
        "--save_strategy",
        "no",
        *extra,
    ]


def test_mdlm_pt_on_tiny_shakespeare_saves_a_loadable_final_model(a2d_dir, tmp_path):
    flags = _flags(
        a2d_dir,
        tmp_path / "pt",
        "--dataset_args",
        "Trelis/tiny-shakespeare[train:20]",
        "--text_field",
        "Text",
        "--max_length",
        "32",
        "--insert_eos",
        "False",
    )
    assert mdlm_pt.cli(flags) == 0
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "pt" / "checkpoint-final")
    assert model.config.model_type == "a2d-qwen3"
    assert (tmp_path / "pt" / "checkpoint-final" / "trainer_state.json").is_file()  # loss curve


def test_bd3lm_sft_on_the_synthetic_set(a2d_dir, tmp_path):
    flags = _flags(
        a2d_dir,
        tmp_path / "sft",
        "--dataset_args",
        "a2dkit/synthetic[train:16]",
        "--max_length",
        "64",
        "--block_size",
        "8",
    )
    assert bd3lm_sft.cli(flags) == 0
    assert (tmp_path / "sft" / "checkpoint-final" / "model.safetensors").exists()


def test_an_ar_checkpoint_is_converted_in_memory(tmp_path, fresh_tokenizer, capsys):
    make_tiny_ar("llama", fresh_tokenizer).save_pretrained(tmp_path / "ar")
    fresh_tokenizer.save_pretrained(tmp_path / "ar")
    flags = _flags(
        tmp_path / "ar",
        tmp_path / "out",
        "--dataset_args",
        "a2dkit/synthetic[train:8]",
        "--max_length",
        "64",
    )
    assert train.main("mdlm", "sft", flags) == 0
    assert "converting it in memory" in capsys.readouterr().out


def test_bd3lm_pt_refuses_a_block_size_that_does_not_divide_max_length(a2d_dir, tmp_path):
    flags = _flags(
        a2d_dir,
        tmp_path / "x",
        "--dataset_args",
        "Trelis/tiny-shakespeare",
        "--max_length",
        "30",
        "--block_size",
        "8",
        "--text_field",
        "Text",
    )
    with pytest.raises(ValueError, match=r"block_size=8 must divide max_length=30"):
        train.main("bd3lm", "pt", flags)


def test_unknown_algo_is_refused():
    with pytest.raises(ValueError, match="algo='ar'"):
        train.main("ar", "pt", [])


@pytest.mark.parametrize(
    "kind, block, eos_fill, eos_multiple",
    [
        ("sft", None, True, None),
        ("pt", None, False, None),
        ("sft", 4, False, 4),
        ("pt", 4, False, None),
    ],
)
def test_recipes_pad_sft_rows_with_labelled_eos(
    fresh_tokenizer, kind, block, eos_fill, eos_multiple
):
    collator = setup.make_collator(kind, fresh_tokenizer, block)
    assert (collator.eos_fill, collator.pad_with_eos_to_multiple) == (eos_fill, eos_multiple)
    assert collator.pad_to_multiple_of == block


def test_mdlm_sft_collator_fills_to_fill_length_only_for_mdlm_sft(fresh_tokenizer):
    assert setup.make_collator("sft", fresh_tokenizer, None, 80).eos_fill_length == 80
    assert setup.make_collator("sft", fresh_tokenizer, None).eos_fill_length is None
    assert setup.make_collator("sft", fresh_tokenizer, 4, 80).eos_fill_length is None


@pytest.mark.parametrize("algo, kind", [("mdlm", "pt"), ("bd3lm", "sft")])
def test_pad_to_max_length_is_refused_where_it_does_nothing(a2d_dir, tmp_path, algo, kind):
    flags = _flags(a2d_dir, tmp_path / "x", "--dataset_args", "a2dkit/synthetic[train:8,test:2]",
                   "--pad_to_max_length", "True")  # fmt: skip
    with pytest.raises(ValueError, match=f"--pad_to_max_length True .* nothing for {kind}"):
        train.main(algo, kind, flags)
