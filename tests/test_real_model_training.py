"""The real pretrained model through training, sampling, chat and lm-eval: SmolLM2-135M-Instruct
(offline, ``tutorial.assets``), converted once for the module, then 20 steps of MDLM and BD3LM SFT.

Every claim is measured on the real 30-layer model: held-out loss (same held-out batch, same
noise) falls with training, the samplers fill every mask with decodable text, one chat turn and
one lm-eval run go through.
"""

from __future__ import annotations

import importlib
import io

import lm_eval
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from a2dkit import convert, data
from a2dkit.data.preprocess import tokenize_sft
from a2dkit.eval import exact_match
from a2dkit.eval import tasks as eval_tasks
from a2dkit.samplers import BD3LMSampler, MDLMSampler
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.training.setup import make_collator
from a2dkit.training.trainers import BD3LMTrainer, MDLMTrainer
from a2dkit.tutorial import assets

BLOCK = 16  # BD3LM block size; also the answer length sampled below
DATASET = "a2dkit/synthetic[train:400,test:16,tasks:first|last]"
ALGOS = {"mdlm": (MDLMConfig, MDLMTrainer, MDLMSampler),
         "bd3lm": (BD3LMConfig, BD3LMTrainer, BD3LMSampler)}  # fmt: skip


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> str:
    """SmolLM2-135M-Instruct converted once for the whole module (safetensors, float32)."""
    out = tmp_path_factory.mktemp("smollm2") / "a2d"
    return str(convert.convert(assets.smollm2_checkpoint(), out))


@pytest.fixture(scope="module")
def trained(converted, tmp_path_factory) -> dict[str, str]:
    """20 SFT steps of each algorithm on the converted model: algo -> checkpoint-final dir."""
    runs = {}
    for algo in ALGOS:
        out = tmp_path_factory.mktemp(f"{algo}-sft")
        flags = ["--model_name_or_path", converted, "--output_dir", str(out),
                 "--dataset_args", DATASET, "--max_length", "64", "--max_steps", "20",
                 "--per_device_train_batch_size", "4", "--learning_rate", "1e-4",
                 "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
                 "--disable_tqdm", "True", "--use_cpu", "True", "--logging_steps", "5"]  # fmt: skip
        flags += ["--block_size", str(BLOCK)] if algo == "bd3lm" else []
        cli = importlib.import_module(f"a2dkit.cli.{algo}.sft").cli
        assert cli(flags) == 0
        runs[algo] = str(out / "checkpoint-final")
    return runs


def _load(path: str):
    model = AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)


def _held_out_loss(path: str, algo: str, tmp_path) -> float:
    """The trainer's own SFT loss on 8 held-out rows, under fixed seeds (the same noise for
    every model): mean over 4 draws of t and masks."""
    model, tok = _load(path)
    config_cls, trainer_cls, _ = ALGOS[algo]
    extra = {"block_size": BLOCK} if algo == "bd3lm" else {}
    args = config_cls(output_dir=str(tmp_path), use_cpu=True, report_to="none", **extra)
    trainer = trainer_cls(model=model, args=args, processing_class=tok)
    test = data.load_dataset_args(DATASET)["test"].select(range(8))
    collate = make_collator("sft", tok, extra.get("block_size"))
    batch = collate([tokenize_sft(row, tok, max_length=64) for row in test])
    draws = []
    for seed in range(4):
        torch.manual_seed(seed)
        with torch.no_grad():
            draws.append(trainer.compute_loss(model, batch).item())
    return sum(draws) / len(draws)


@pytest.mark.parametrize("algo", ALGOS)
def test_twenty_sft_steps_lower_the_held_out_loss(converted, trained, algo, tmp_path):
    before = _held_out_loss(converted, algo, tmp_path / "before")
    after = _held_out_loss(trained[algo], algo, tmp_path / "after")
    assert after < 0.8 * before, (before, after)  # a real drop, not noise: same noise both times


@pytest.mark.parametrize("algo", ALGOS)
def test_samplers_fill_every_mask_and_the_answers_decode(trained, algo):
    model, tok = _load(trained[algo])
    test = data.load_dataset_args(DATASET)["test"].select(range(2))
    prompts = data.chat_prompts(test, tok)
    out = ALGOS[algo][2](model, tok).sample(prompts, max_new_tokens=BLOCK, steps=BLOCK,
                                            block_size=BLOCK)  # fmt: skip
    generated = out.sequences[:, out.gen_start : out.gen_end]  # (B, BLOCK)
    assert generated.shape == (2, BLOCK)
    assert not (out.sequences == tok.mask_token_id).any()  # every mask committed
    texts = tok.batch_decode(generated.tolist())
    assert all(isinstance(t, str) and t for t in texts) and "<|mask|>" not in "".join(texts)
    assert out.sequences[:, : out.gen_start].ne(tok.mask_token_id).all()


def test_one_turn_of_the_chat_cli(trained, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("First digit: 7 2 9\n"))
    cli = importlib.import_module("a2dkit.cli.bd3lm.chat").cli
    argv = ["--model_name_or_path", trained["bd3lm"], "--chat_template", "True",
            "--visualize", "False", "--max_new_tokens", str(BLOCK), "--steps", str(BLOCK),
            "--block_size", str(BLOCK)]  # fmt: skip
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "(bd3lm)" in printed and printed.count("assistant>") == 1
    reply = printed.split("assistant>", 1)[1].strip()
    assert reply and "░" not in reply  # a decoded answer, no mask glyph left


def test_lm_eval_simple_evaluate_on_the_real_model(trained):
    model, tok = _load(trained["mdlm"])
    args = dict(pretrained=model, tokenizer=tok, max_new_tokens=BLOCK, steps=BLOCK,
                mc_num=2, device="cpu")  # fmt: skip
    res = lm_eval.simple_evaluate(
        model="a2d_mdlm", model_args=args, tasks=["a2dkit_synthetic", "a2dkit_synthetic_mc"],
        limit=2, task_manager=eval_tasks.task_manager(include_defaults=False),
        apply_chat_template=True, random_seed=0,
    )  # fmt: skip
    gen = res["samples"]["a2dkit_synthetic"]
    assert len(gen) == 2 and "<|im_start|>user\n" in gen[0]["arguments"][0][0]  # chat template
    preds, refs = [s["filtered_resps"][0] for s in gen], [s["target"] for s in gen]
    em = res["results"]["a2dkit_synthetic"]["exact_match,strip"]
    assert abs(exact_match.exact_match(preds, refs) - em) < 1e-12  # lm-eval scores what we decode
    mc = res["samples"]["a2dkit_synthetic_mc"]
    lls = [float(r[0][0]) for r in mc[0]["resps"]]
    assert len(lls) >= 2 and all(ll < 0 for ll in lls)  # one finite ELBO per choice
