"""The scale table: every size a notebook or recipe needs, for ``smoke``, ``laptop``, ``warmup``
and ``full`` (the loaders of each scale's source and trained models: ``a2dkit.tutorial.runs``).

``smoke`` = tiny offline models on CPU (seconds per notebook); ``laptop`` = the real
SmolLM2-135M-Instruct, offline, on 2 CPU cores (the whole book in about an hour); ``warmup`` = the
dLLM A2D README's tiny-shakespeare / alpaca commands on Qwen/Qwen3-0.6B (1 GPU); ``full`` = the
Tiny-A2D SFT recipe. References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D README.
"""

from __future__ import annotations

from a2dkit.tutorial import progress
from a2dkit.tutorial.scale_config import SMOLLM2, TINY, ScaleConfig
from a2dkit.tutorial.sections import (
    GRPO,
    SFT,
    Eval,
    Hardware,
    Pretrain,
    Retention,
    Sampling,
    Source,
)

__all__ = ["TINY_A2D_MIXTURE", "SCALES", "get_scale"]

# the Tiny-A2D SFT mixture (dLLM README, "Tiny-A2D": Qwen3-0.6B-diffusion-{mdlm,bd3lm}-v0.1)
TINY_A2D_MIXTURE = (
    "allenai/tulu-3-sft-mixture+HuggingFaceTB/smoltalk"
    "+OpenCoder-LLM/opc-sft-stage1[lang:python]+OpenCoder-LLM/opc-sft-stage2[lang:python]"
)

# chapter 11's rows, every one (a2dkit.tutorial.retention.RECIPES; checked by its tests)
EVERY_RECIPE = ("plain", "joint-ar", "curriculum", "anneal", "distill", "position",
                "complementary", "layer-lr", "semi-ar", "tidar", "best")  # fmt: skip

_SMOKE = ScaleConfig(
    name="smoke",
    description="tiny offline AR Qwen3 on CPU: every notebook in about a minute",
    source=Source(
        model=TINY,
        tiny_hidden_size=64,
        tiny_num_layers=2,
        tiny_vocab_size=500,
        pretrain_steps=300,
        seq_len=64,
        batch_size=16,
        chat_max_new_tokens=24,
    ),
    pretrain=Pretrain(
        dataset_args="Trelis/tiny-shakespeare",
        text_field="Text",
        max_length=64,
        mdlm_steps=60,
        bd3lm_steps=60,
        curve_steps=60,
        num_train_epochs=1,
        batch_size=16,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        block_size=16,
    ),
    sampling=Sampling(steps=32, max_new_tokens=32, temperature=0.0),
    sft=SFT(
        # the one-digit lookups: the 160k-parameter model learns them in ~2000 steps (measured:
        # MDLM exact match 0.19 after 1200 steps at length 64, its loss still falling; 0.69 after
        # 2000); the multi-token tasks (add, copy, reverse, sort) need far longer at this size
        dataset_args="a2dkit/synthetic[train:2000,test:32,tasks:first|last]",
        # MDLM rows (~35 tokens) EOS-filled to 80 >= the longest prompt (33) + max_new_tokens:
        # past the trained positions the model wrote low-confidence junk, so threshold decoding
        # saved only 1.6x of the forward passes; the 45 extra EOS dilute the answer's loss, hence
        # 2400 steps, not 1200
        max_length=80,
        pad_to_max_length=True,
        steps=2400,
        # the lookup is learned in a sudden drop of the loss after a long plateau (~0.045). At lr
        # 2e-3 the drop came late and at a thread count's whim: MDLM exact match 0.875 on 1
        # thread but 0.06 on 2 (still on the plateau). At 5e-4 it starts ~900 steps sooner: MDLM
        # 0.875 / 1.00 (1 / 2 threads), BD3LM 0.875, on all 32 held-out prompts
        learning_rate=5e-4,
        num_train_epochs=1,
        batch_size=16,
        gradient_accumulation_steps=1,
        block_size=16,
        num_eval_examples=16,
        max_new_tokens=32,
        sampler_steps=32,
        min_gain=0.25,
    ),
    eval=Eval(tasks=("a2dkit_synthetic",), limit=8, elbo_samples=8),
    # GRPO starts from a 100-step SFT (MDLM: ends its turn at once; BD3LM: one digit already);
    # 60 steps take ~15 s each on 2 cores. Before the EOS fill of the SFT rows, lr 1e-3 from a
    # 30-step SFT collapsed within 120 steps (the reward fell to 0)
    grpo=GRPO(
        dataset="a2dkit/synthetic",
        rewards=("digit_answer", "exact_match"),
        sft_steps=100,
        # measured: from 100 steps at chapter 7's lr 5e-4, MDLM still ends its turn at once and
        # its training reward falls (0.025 -> 0.004); at 2e-3 it starts answering (0.23 -> 0.50)
        sft_learning_rate=2e-3,
        steps=60,
        # lr 3e-4, measured on an AMD EPYC runner (summed reward, first -> last quarter, seeds
        # 0-3): MDLM rises at every seed (+0.05 to +0.27), BD3LM stays at its one-digit ceiling
        # (0.95 to 1.01 at the end). The former 1e-3 collapsed the MDLM there (0.59 -> 0.24; on
        # the Xeon it had risen, 0.23 -> 0.72), and 5e-4 collapsed both at seed 2 (-> 0.00)
        learning_rate=3e-4,
        batch_size=16,
        num_generations=8,
        max_new_tokens=8,
    ),
    hardware=Hardware(
        num_nodes=1, gpus_per_node=0, accelerate_config="cpu", dtype="float32", use_cpu=True
    ),
    # chapter 11 on the tiny model: every recipe runs (seconds each); the numbers mean nothing
    retention=Retention(
        self_chat_train=160,
        self_chat_test=16,
        self_chat_max_new_tokens=24,
        max_length=64,
        steps=30,
        batch_size=8,
        learning_rate=1e-3,
        block_size=8,
        max_new_tokens=16,
        num_prompts=8,
        humaneval_limit=2,
        elbo_samples=2,
        recipes=EVERY_RECIPE,
        chapter_recipes=EVERY_RECIPE,
    ),  # fmt: skip
)

# the real pretrained model on 2 CPU cores: sizes measured so the whole book runs in about an hour
_LAPTOP = _SMOKE.replace(
    name="laptop",
    description="SmolLM2-135M-Instruct (real, offline) on 2 CPU cores: the book in about an hour",
    source=dict(model=SMOLLM2, chat_max_new_tokens=48),
    pretrain=dict(
        max_length=128,
        mdlm_steps=80,
        bd3lm_steps=60,
        curve_steps=15,
        batch_size=4,
        # MDLM: predicting token i at position i (dLLM's default), 80 steps at lr 1e-4 leave only
        # ":" and line breaks; with the right shift, at 3e-4, the same 80 steps write words ("I
        # will speak to you.") sampled in blocks of 4 (sampling.block_size; measured on 4 rows;
        # at 5e-4 one run wrote words and a rerun at another thread count only line breaks)
        learning_rate=3e-4,
        right_shift_logits=("mdlm", "bd3lm"),
        # BD3LM: right-shifted too, 60 steps in blocks of 4 (BD3LM's smallest L') write words
        # ("I'll do it, and let the devil do it."); in blocks of 16: line breaks and fragments
        block_size=4,
    ),
    sampling=dict(steps=32, max_new_tokens=32, block_size=4),
    sft=dict(
        # lookups and copying, on which the converted model, never trained to denoise, answers
        # nothing (exact match 0.00 on 24 prompts). Measured here: 120 steps at lr 1e-4 teach
        # BD3LM (1.00) but not MDLM (0.00: only EOS and newlines, loss still ~1.5); 240 steps at
        # lr 3e-4 teach both (1.00, 1.00; MDLM 535 s on 1 thread, BD3LM 476 s)
        dataset_args="a2dkit/synthetic[train:2000,test:32,tasks:first|last|copy]",
        max_length=64,
        pad_to_max_length=False,
        steps=240,
        learning_rate=3e-4,
        batch_size=4,
        num_eval_examples=24,
        max_new_tokens=16,
        sampler_steps=16,
        min_gain=0.25,
    ),
    grpo=dict(
        sft_steps=30,
        sft_learning_rate=3e-4,
        steps=20,
        learning_rate=1e-5,
        batch_size=8,
        num_generations=4,
    ),
    eval=dict(elbo_samples=4),
    # chapter 11: SmolLM2's own answers to 2,200 everyday prompts (64 tokens, built once: 17 min
    # on 2 idle cores at 32 prompts per generate call, ~1.4x faster at 128); one budget for every
    # row: 60 steps x batch 4 x length 128 (3 min for MDLM plain, 5 for BD3LM plain, 16 for BD3LM
    # best: its AR and complementary views)
    retention=dict(
        self_chat_train=2200,
        self_chat_test=200,
        self_chat_max_new_tokens=64,
        max_length=128,
        steps=60,
        batch_size=4,
        learning_rate=3e-4,
        block_size=8,
        max_new_tokens=64,
        num_prompts=40,
        humaneval_limit=20,
        elbo_samples=4,
        recipes=EVERY_RECIPE,  # the bench's table
        # the chapter trains BD3LM layer-lr alone (the table's best agreement, at plain's 5 min):
        # best (16 min) or the MDLM pair (3 + 17 min training, 17 decoding 40 prompts at ~5 tok/s)
        # would take the published book past 90 minutes on 2 cores; their rows come from the bench
        chapter_recipes=("layer-lr",),
        chapter_algos=("bd3lm",),
    ),
)

# dLLM A2D README "Warmup": tiny-shakespeare pt / alpaca SFT of Qwen/Qwen3-0.6B
_WARMUP = _SMOKE.replace(
    name="warmup",
    description="Qwen/Qwen3-0.6B, the dLLM README warmup commands, 1 GPU",
    source=dict(model="Qwen/Qwen3-0.6B", chat_max_new_tokens=128),
    pretrain=dict(
        max_length=128,
        mdlm_steps=-1,
        bd3lm_steps=-1,
        curve_steps=200,
        num_train_epochs=20,
        learning_rate=1e-4,
        block_size=32,
    ),
    sampling=dict(steps=128, max_new_tokens=128, temperature=0.7),
    sft=dict(
        dataset_args="tatsu-lab/alpaca[test:100]",
        max_length=512,
        pad_to_max_length=False,
        steps=-1,
        learning_rate=1e-4,
        num_train_epochs=20,
        block_size=32,
        num_eval_examples=100,
        max_new_tokens=128,
        sampler_steps=128,
        min_gain=0.0,
    ),
    eval=dict(tasks=("gsm8k_cot",), limit=100, elbo_samples=32),
    # dLLM examples/rl/grpo (1-GPU quick test): gsm8k, d1's rewards, from the finished SFT
    grpo=dict(
        dataset="gsm8k",
        rewards=("gsm8k_correctness", "integer", "xml_count", "soft_format", "strict_format"),
        sft_steps=-1,
        sft_learning_rate=1e-4,
        steps=15000,
        learning_rate=3e-6,
        batch_size=6,
        num_generations=6,
        max_new_tokens=256,
    ),
    hardware=dict(gpus_per_node=1, accelerate_config="ddp", dtype="bfloat16", use_cpu=False),
    retention=dict(
        self_chat_train=2200,
        self_chat_test=200,
        self_chat_max_new_tokens=128,
        max_length=512,
        steps=1000,
        batch_size=8,
        learning_rate=1e-4,
        block_size=32,
        max_new_tokens=128,
        num_prompts=200,
        humaneval_limit=164,
        elbo_samples=32,
        recipes=EVERY_RECIPE,
    ),  # fmt: skip
)

# dLLM A2D README "Tiny-A2D": 8 nodes x 8 GPUs, zero2, 10 epochs, global batch 2048
_FULL = _WARMUP.replace(
    name="full",
    description="the Tiny-A2D SFT recipe: Qwen/Qwen3-0.6B, 64 GPUs (prepared, launched via Slurm)",
    pretrain=dict(gradient_accumulation_steps=2),  # as the SFT below (same world size)
    sampling=dict(steps=256, max_new_tokens=256, temperature=0.0),
    sft=dict(
        dataset_args=TINY_A2D_MIXTURE,
        max_length=1024,
        num_train_epochs=10,
        gradient_accumulation_steps=2,
        num_eval_examples=200,
        max_new_tokens=256,
        sampler_steps=256,
    ),
    eval=dict(
        tasks=("gsm8k_cot", "bbh", "minerva_math", "mmlu", "mmlu_pro", "hellaswag"), limit=None
    ),
    hardware=dict(num_nodes=8, gpus_per_node=8, accelerate_config="zero2"),
)

SCALES: dict[str, ScaleConfig] = {s.name: s for s in (_SMOKE, _LAPTOP, _WARMUP, _FULL)}


def get_scale(name: str) -> ScaleConfig:
    """The ``ScaleConfig`` called ``name`` (case-insensitive); the notebooks' entry point, so it
    also hides progress bars (noise on a static book page; ``a2dkit.tutorial.progress``).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"scale name must be a str, got {type(name).__name__}: {name!r}")
    key = name.strip().lower()
    if key not in SCALES:
        raise ValueError(f"unknown scale {name!r}; valid scales: {list(SCALES)}")
    progress.hide_progress_bars()
    return SCALES[key]
