"""diffu-GRPO raises the mean reward of a tiny SFT'd model on a kit-generated task, on CPU.

A random tiny Qwen3 is converted and SFT'd for 100 steps on the synthetic one-digit lookups: it
then answers with a single digit about half of the time. GRPO with the format reward
``digit_answer`` must raise the mean reward from the first to the last quarter of its logged
steps, for MDLM and for BD3LM. Negative control: the same run with the reward reversed (1 for
anything but one digit) lowers the digit rate, from the same first batch of samples, so the
change follows the reward and is no drift of training itself.
References: d1 arXiv 2504.12216 (diffu-GRPO); GRPO arXiv 2402.03300.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import make_tiny_ar
from transformers import AutoModelForMaskedLM, AutoTokenizer

from a2dkit import convert
from a2dkit.cli.bd3lm import sft as bd3lm_sft
from a2dkit.cli.mdlm import sft as mdlm_sft
from a2dkit.grpo import BD3LMGRPOTrainer, DiffuGRPOConfig, MDLMGRPOTrainer, curves, rewards, tasks

SFT = {"mdlm": mdlm_sft, "bd3lm": bd3lm_sft}
TRAINERS = {"mdlm": MDLMGRPOTrainer, "bd3lm": BD3LMGRPOTrainer}
STEPS = 60
MIN_RISE = 0.15  # measured at seeds 0 and 1 (MDLM): +0.34 and +0.32


@pytest.fixture(scope="module")
def sft_models(tmp_path_factory, small_tokenizer) -> dict:
    """{algo: checkpoint dir}: the tiny model after 100 SFT steps of each algorithm."""
    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    root = tmp_path_factory.mktemp("grpo-evidence")
    model.save_pretrained(root / "a2d")
    tok.save_pretrained(root / "a2d")
    out = {}
    for algo, cli in SFT.items():
        flags = ["--model_name_or_path", str(root / "a2d"), "--output_dir", str(root / algo),
                 "--max_steps", "100", "--per_device_train_batch_size", "16",
                 "--learning_rate", "2e-3", "--max_length", "64", "--use_cpu", "True",
                 "--dataset_args", "a2dkit/synthetic[train:2000,test:16,tasks:first|last]",
                 "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none",
                 "--disable_tqdm", "True"]  # fmt: skip
        if algo == "bd3lm":
            flags += ["--block_size", "4"]
        assert cli.cli(flags) == 0
        out[algo] = root / algo / "checkpoint-final"
    return out


def _not_one_digit(completions, **columns) -> list[float]:
    return [1.0 - r for r in rewards.REWARDS["digit_answer"](completions, **columns)]


def _grpo(checkpoint, algo: str, reward, tmp_path) -> list[dict]:
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_pretrained(checkpoint)
    tok = AutoTokenizer.from_pretrained(checkpoint)
    args = DiffuGRPOConfig(
        output_dir=str(tmp_path), max_steps=STEPS, per_device_train_batch_size=16,
        num_generations=8, max_completion_length=8, block_size=8 if algo == "mdlm" else 4,
        steps=8, learning_rate=1e-3, lr_scheduler_type="constant", temperature=1.0, beta=0.0,
        use_cpu=True, save_strategy="no", disable_tqdm=True, logging_steps=1, seed=0,
        report_to="none",
    )  # fmt: skip
    train = tasks.load_task("a2dkit/synthetic", "train", 256, seed=0)
    trainer = TRAINERS[algo](model.train(), [reward], args, train_dataset=train,
                             processing_class=tok)  # fmt: skip
    trainer.train()
    return trainer.state.log_history


@pytest.fixture(scope="module")
def rising(sft_models, tmp_path_factory) -> dict:
    """{algo: rewards logged by GRPO with digit_answer}, run once per algorithm on first use."""
    cache: dict[str, list[float]] = {}

    def get(algo: str) -> list[float]:
        if algo not in cache:
            out = tmp_path_factory.mktemp(f"grpo-{algo}")
            log = _grpo(sft_models[algo], algo, rewards.REWARDS["digit_answer"], out)
            cache[algo] = curves.logged(log)
        return cache[algo]

    return get


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_grpo_raises_the_mean_reward_of_a_tiny_sft_model(rising, algo):
    values = rising(algo)
    assert len(values) == STEPS
    first, last = curves.quarter_means(values)
    assert 0.1 < values[0] < 0.9, values[0]  # the start is neither hopeless nor saturated
    assert last >= first + MIN_RISE, (first, last, values)


def test_the_reversed_reward_lowers_the_digit_rate_from_the_same_start(
    sft_models, rising, tmp_path
):
    digit = rising("mdlm")
    log = _grpo(sft_models["mdlm"], "mdlm", _not_one_digit, tmp_path)
    rate = [1.0 - r for r in curves.logged(log)]
    assert rate[0] == pytest.approx(digit[0])  # same seed, same model: the same first samples
    down, up = curves.quarter_means(rate)[1], curves.quarter_means(digit)[1]
    assert down <= rate[0] - MIN_RISE, rate  # the reward decides the direction
    assert up - down >= 2 * MIN_RISE, (up, down)


def test_quarter_means_and_logged_refuse_what_they_cannot_summarise():
    assert curves.quarter_means([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least 4"):
        curves.quarter_means([1.0, 2.0])
    with pytest.raises(KeyError, match="never logged"):
        curves.logged([{"loss": 1.0}], "reward")
