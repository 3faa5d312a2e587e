"""diffu-GRPO trainers on TRL's GRPOTrainer: seeds, generation, LoRA, config errors, the CLI."""

import copy

import pytest
import torch
from conftest import make_tiny_ar
from datasets import Dataset

from a2dkit import convert
from a2dkit.grpo import BD3LMGRPOTrainer, DiffuGRPOConfig, MDLMGRPOTrainer
from a2dkit.samplers import BD3LMSampler, MDLMSampler
from a2dkit.training.config import ModelArguments

TRAINERS = {"mdlm": MDLMGRPOTrainer, "bd3lm": BD3LMGRPOTrainer}


@pytest.fixture
def a2d(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    return model, tok


def _data(n: int = 4) -> Dataset:
    prompts = [[{"role": "user", "content": f"say {i} {i}"}] for i in range(n)]
    return Dataset.from_dict({"prompt": prompts, "answer": [str(i) for i in range(n)]})


def _length_reward(completions, **kw):
    return [len(c[0]["content"]) / 10 for c in completions]


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4,
                num_generations=4, num_iterations=2, max_completion_length=8, block_size=4,
                steps=8, use_cpu=True, learning_rate=0.0, save_strategy="no", beta=0.04,
                p_mask_prompt=0.5, disable_tqdm=True, seed=0)  # fmt: skip
    return DiffuGRPOConfig(**{**base, **kw})


def _kl(trainer) -> list[float]:
    return [h["kl"] for h in trainer.state.log_history if "kl" in h]


class _WrongSeeds(MDLMGRPOTrainer):
    """Negative control: the current policy sees the other iteration's prompt mask."""

    def _compute_loss(self, model, inputs):
        return super()._compute_loss(model, {**inputs, "mask_seeds": inputs["mask_seeds"].flip(1)})


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_old_new_and_reference_logprobs_share_each_iterations_mask(a2d, tmp_path, algo):
    """With lr = 0 policy = reference, so KL is exactly 0 at every inner iteration iff the three
    log-probs of an iteration used the same masked prompt."""
    model, tok = a2d
    trainer = TRAINERS[algo](model, [_length_reward], _args(tmp_path), train_dataset=_data(),
                             processing_class=tok)  # fmt: skip
    trainer.train()
    kl = _kl(trainer)
    assert len(kl) == 2 and max(abs(k) for k in kl) < 1e-6
    wrong = _WrongSeeds(copy.deepcopy(model), [_length_reward], _args(tmp_path),
                        train_dataset=_data(), processing_class=tok)  # fmt: skip
    wrong.train()
    assert max(_kl(wrong)) > 1e-4  # the check can fail


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_generation_is_the_a2dkit_sampler(a2d, tmp_path, algo):
    model, tok = a2d
    args = _args(tmp_path, temperature=0.0, threshold=0.5)
    trainer = TRAINERS[algo](model, [_length_reward], args, train_dataset=_data(),
                             processing_class=tok)  # fmt: skip
    prompts = [[5, 6, 7], [8, 9]]
    model.train()
    got, _ = trainer._generate_single_turn(prompts, None, {}, 1)
    assert model.training  # the sampler's eval() was undone
    sampler = (MDLMSampler if algo == "mdlm" else BD3LMSampler)(model, tok)
    out = sampler.sample(prompts, trainer.sampler_config)
    want = out.sequences[:, out.gen_start : out.gen_end].tolist()
    for g, w in zip(got, want, strict=True):
        assert g == w[: len(g)] and (len(g) == len(w) or g[-1] == tok.eos_token_id)


@pytest.mark.parametrize(
    "kw, match",
    [(dict(p_mask_prompt=1.5), "p_mask_prompt"), (dict(num_generations=3), "divisible"),
     (dict(remasking="best"), "remasking"), (dict(steps=0), "steps"),
     (dict(kv_cache="full"), "kv_cache='full'")],
)  # fmt: skip
def test_bad_config_is_refused(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        _args(tmp_path, **kw)


def test_mdlm_generation_takes_the_fast_dllm_cache_and_bd3lm_refuses_it(a2d, tmp_path):
    model, tok = a2d
    args = _args(tmp_path, temperature=0.0, kv_cache="dual", max_completion_length=12, steps=12)
    trainer = MDLMGRPOTrainer(model, [_length_reward], args, train_dataset=_data(),
                              processing_class=tok)  # fmt: skip
    assert trainer.sampler_config.kv_cache == "dual"
    got, _ = trainer._generate_single_turn([[5, 6, 7]], None, {}, 1)
    out = MDLMSampler(model, tok).sample([[5, 6, 7]], trainer.sampler_config)
    assert got[0] == out.sequences[0, out.gen_start : out.gen_start + len(got[0])].tolist()
    with pytest.raises(ValueError, match="kv_cache='dual' is an MDLM option"):
        BD3LMGRPOTrainer(model, [_length_reward], args, train_dataset=_data(),
                         processing_class=tok)  # fmt: skip


def test_trainer_refuses_a_path_or_a_tokenizer_without_mask(a2d, small_tokenizer, tmp_path):
    model, tok = a2d
    with pytest.raises(TypeError, match="loaded A2D model"):
        MDLMGRPOTrainer("some/path", [_length_reward], _args(tmp_path), processing_class=tok)
    with pytest.raises(ValueError, match="mask token"):
        MDLMGRPOTrainer(model, [_length_reward], _args(tmp_path), processing_class=small_tokenizer)
    model.config.right_shift_logits = True  # a right-shifted checkpoint: d1's log-probs don't fit
    try:
        with pytest.raises(ValueError, match="right_shift_logits=True"):
            MDLMGRPOTrainer(model, [_length_reward], _args(tmp_path), processing_class=tok)
    finally:
        del model.config.right_shift_logits


def test_lora_grpo_trains_the_adapter_and_saves_adapter_and_merged_model(a2d, tmp_path):
    """The merged checkpoint computes what the trained PEFT model computes. In float32: with
    ``bf16=True`` (TRL's default) accelerate leaves the PEFT model's forward under bf16 autocast,
    and the two then differ by bf16 rounding (~3e-3 here), not by the merge."""
    from transformers import AutoModelForMaskedLM

    from a2dkit.training import lora

    model, tok = a2d
    before = copy.deepcopy(model.state_dict())
    args = _args(tmp_path, learning_rate=5e-2, num_iterations=1, bf16=False)
    config = lora.lora_config(ModelArguments("m", lora_r=4, lora_alpha=8))
    trainer = MDLMGRPOTrainer(model, [_length_reward], args, train_dataset=_data(),
                              processing_class=tok, peft_config=config)  # fmt: skip
    trainer.train()
    assert trainer.ref_model is None  # the reference is the base model with the adapter off
    peft_model = trainer.accelerator.unwrap_model(trainer.model).eval()
    x = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        trained = peft_model(input_ids=x).logits
        with peft_model.disable_adapter():
            adapter_off = peft_model(input_ids=x).logits
    lora.save_final(trainer, tmp_path / "checkpoint-final")
    assert (tmp_path / lora.ADAPTER_DIR / "adapter_config.json").is_file()
    merged = AutoModelForMaskedLM.from_pretrained(tmp_path / "checkpoint-final").eval()
    base = {k: v for k, v in merged.state_dict().items() if k in before}
    assert any(not torch.equal(v, before[k]) for k, v in base.items())  # the adapter moved it
    with torch.no_grad():
        merged_logits = merged(input_ids=x).logits
    torch.testing.assert_close(merged_logits, trained, rtol=0, atol=1e-5)
    assert (merged_logits - adapter_off).abs().max() > 1e-2  # negative control: it is no no-op


def test_load_in_4bit_without_gpu_is_a_clear_error():
    from a2dkit.training import lora

    with pytest.raises(ValueError, match="CUDA|bitsandbytes"):
        lora.quantization_kwargs(ModelArguments("m", lora_r=4, load_in_4bit=True))
    with pytest.raises(ValueError, match="lora_r"):
        ModelArguments("m", load_in_4bit=True)
