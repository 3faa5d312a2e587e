"""Held-out GRPO rewards score a completion as training does: up to its first EOS (TRL's
convention). Without the cut, tokens after the EOS, which GRPO never trains, joined the answer:
chapter 10's BD3LM model sampled "4<eos>44" and was scored as "444" (no single digit)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from conftest import make_tiny_ar
from datasets import Dataset

from a2dkit import convert
from a2dkit.grpo import DiffuGRPOConfig, MDLMGRPOTrainer, curves, rewards
from a2dkit.grpo.completions import cut_after_eos, eos_token_ids


@pytest.fixture
def a2d(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    return model, tok


def _rows(n: int) -> Dataset:
    prompts = [[{"role": "user", "content": f"Last digit: {i} {i}"}] for i in range(n)]
    return Dataset.from_dict({"prompt": prompts, "answer": [str(i) for i in range(n)]})


@pytest.mark.parametrize("declared", [None, "eos", "im_end", "both"])
def test_eos_ids_are_the_ones_the_grpo_trainer_cuts_at(a2d, tmp_path, declared):
    model, tok = a2d
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.eos_token_id = {
        None: None, "eos": tok.eos_token_id, "im_end": [im_end],
        "both": [im_end, tok.eos_token_id],
    }[declared]  # fmt: skip
    args = DiffuGRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4,
                           num_generations=4, max_completion_length=8, steps=8, use_cpu=True,
                           report_to="none", disable_tqdm=True)  # fmt: skip
    want = eos_token_ids(model, tok)
    trainer = MDLMGRPOTrainer(model, [rewards.REWARDS["digit_answer"]], args,
                              train_dataset=_rows(4), processing_class=tok)  # fmt: skip
    assert sorted(trainer.eos_token_ids) == sorted(want)
    assert tok.eos_token_id in want and (declared in (None, "eos")) == (im_end not in want)


def test_cut_keeps_the_first_eos_and_nothing_after():
    assert cut_after_eos([4, 9, 4, 4], [9]) == [4, 9]
    assert cut_after_eos([4, 4], [9]) == [4, 4]  # no EOS: the whole row
    assert cut_after_eos([9, 4], [7, 9]) == [9]


def test_held_out_reward_scores_each_completion_up_to_its_first_eos(small_tokenizer):
    tok = small_tokenizer
    digit = {d: tok(d, add_special_tokens=False)["input_ids"] for d in "3478"}
    assert all(len(ids) == 1 for ids in digit.values())
    eos = tok.eos_token_id
    generated = [
        digit["4"] + [eos] + digit["4"] + digit["4"],  # "4" (then "44" after the EOS)
        digit["7"] + digit["8"] + [eos] + digit["3"],
    ]  # "78": two digits before it

    class FixedSampler:  # stands in for MDLMSampler / BD3LMSampler
        def __init__(self, model, tokenizer):
            pass

        def sample(self, prompts, config, **kwargs):
            width = max(map(len, prompts))
            rows = [[eos] * (width - len(p)) + p + g for p, g in zip(prompts, generated,
                                                                       strict=True)]  # fmt: skip
            return SimpleNamespace(sequences=torch.tensor(rows), gen_start=width,
                                   gen_end=width + len(generated[0]))  # fmt: skip

    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=None))
    result = curves.held_out_reward(model, tok, FixedSampler, _rows(2),
                                    [rewards.REWARDS["digit_answer"]], None)  # fmt: skip
    assert result["completions"] == ["4", "78"]
    assert result["rewards"] == {"digit_answer": 0.5}
    # the control: decoded whole, as before, the first answer reads "444" and scores 0
    assert tok.decode(generated[0], skip_special_tokens=True) == "444"
