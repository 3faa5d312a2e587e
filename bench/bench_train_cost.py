"""Bench: the cost of one MDLM and one BD3LM optimizer step relative to one AR step of the same
model and batch (forward + loss + backward + AdamW), measured in one run: medians of interleaved
repeats of the process's CPU time (``--clock wall`` for wall-clock time), which other processes on
a shared machine do not inflate.

Run: OMP_NUM_THREADS=2 python bench/bench_train_cost.py [--repeats 7] [--clock cpu] [--profile]
Targets: MDLM <= 1.15x (same tokens, loss on the masked ones); BD3LM <= 2.3x (it runs 2L tokens).
Rows without a target: BD3LM with the joint AR loss (``+ar``: a causal forward of its own) and
with TiDAR's causal clean stream (``+ar tidar``: the AR loss read from the same forward).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2, vectorized training).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from a2dkit.models import registry
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.training.trainers import BD3LMTrainer, MDLMTrainer

VOCAB, MASK_ID = 4096, 4095
BATCH, SEQ_LEN, BLOCK_SIZE = 4, 128, 32
TARGETS = {"mdlm": 1.15, "bd3lm": 2.3}


def build_models(seed: int = 0):
    """A ~22M-parameter AR Qwen3 (hidden 512, 6 layers, vocab 4096) and its A2D twin (same
    weights, bidirectional attention), both fp32, sdpa, in train mode."""
    dims = dict(
        vocab_size=VOCAB, hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
        num_key_value_heads=4, head_dim=64, intermediate_size=1408, max_position_embeddings=1024,
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    ar = Qwen3ForCausalLM(Qwen3Config(**dims, attn_implementation="sdpa"))
    registry.register_all()
    a2d_config = registry.A2D_CONFIGS["a2d-qwen3"](**dims, is_causal=False, mask_token_id=MASK_ID)
    a2d_config._attn_implementation = "sdpa"
    a2d = registry.A2D_MODELS["a2d-qwen3"](a2d_config)
    a2d.load_state_dict(ar.state_dict())
    return ar.float().train(), a2d.float().train()


def ar_step_fn(model, batch):
    """Next-token cross-entropy (HF shifts the labels) of the causal source model."""
    return lambda: model(batch["input_ids"], labels=batch["input_ids"]).loss


def diffusion_step_fn(model, batch, algo: str, out_dir: str, **flags):
    """The trainer's own ``compute_loss`` (masking, model inputs, MDLM loss) for ``algo``;
    ``flags``: recipe options (e.g. the joint AR loss)."""
    config_cls, trainer_cls = {"mdlm": (MDLMConfig, MDLMTrainer),
                               "bd3lm": (BD3LMConfig, BD3LMTrainer)}[algo]  # fmt: skip
    extra = {"block_size": BLOCK_SIZE} if algo == "bd3lm" else {}
    args = config_cls(output_dir=out_dir, use_cpu=True, report_to="none", **extra, **flags)
    trainer = trainer_cls(model=model, args=args)
    return lambda: trainer.compute_loss(model, batch)


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def timed_step(loss_fn, model, optimizer, clock=time.process_time) -> float:
    """Seconds of one optimizer step: forward + loss + backward + AdamW update."""
    start = clock()
    loss_fn().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return clock() - start


def measure(repeats: int, clock=time.process_time) -> dict[str, list[float]]:
    ar, a2d = build_models()
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randint(0, MASK_ID, (BATCH, SEQ_LEN), generator=gen)  # (B, L)
    batch = {"input_ids": x0, "labels": x0.clone(), "attention_mask": torch.ones_like(x0)}
    with tempfile.TemporaryDirectory() as tmp:
        fns = {
            "ar": (ar_step_fn(ar, batch), ar),
            "mdlm": (diffusion_step_fn(a2d, batch, "mdlm", tmp), a2d),
            "bd3lm": (diffusion_step_fn(a2d, batch, "bd3lm", tmp), a2d),
            # the joint AR + diffusion loss: a causal forward of its own after the staircase
            # (BD3LM's block-causal clean stream), or read from it (TiDAR's causal clean stream)
            "+ar": (diffusion_step_fn(a2d, batch, "bd3lm", tmp, ar_loss_weight=1.0), a2d),
            "+ar tidar": (diffusion_step_fn(a2d, batch, "bd3lm", tmp, ar_loss_weight=1.0,
                                            clean_stream="causal"), a2d),  # fmt: skip
        }
        # lr 0: the weights never change, so every repeat times the same computation
        optims = {k: torch.optim.AdamW(m.parameters(), lr=0.0) for k, (_, m) in fns.items()}
        times: dict[str, list[float]] = {k: [] for k in fns}
        for i in range(repeats + 1):  # round robin; the first round is warm-up
            for name, (fn, model) in fns.items():
                t = timed_step(fn, model, optims[name], clock)
                if i > 0:
                    times[name].append(t)
    return times


def profile_bd3lm() -> None:
    """Top CPU ops of one BD3LM step (to explain a missed target)."""
    _, a2d = build_models()
    x0 = torch.randint(0, MASK_ID, (BATCH, SEQ_LEN))
    batch = {"input_ids": x0, "labels": x0.clone(), "attention_mask": torch.ones_like(x0)}
    with tempfile.TemporaryDirectory() as tmp:
        fn = diffusion_step_fn(a2d, batch, "bd3lm", tmp)
        fn().backward()  # warm-up
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn().backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu")
    parser.add_argument("--profile", action="store_true", help="profile one BD3LM step too")
    opts = parser.parse_args()
    ar, _ = build_models()
    millions = sum(p.numel() for p in ar.parameters()) / 1e6
    print(f"model: {millions:.1f}M parameters; batch {BATCH} x {SEQ_LEN} tokens, BD3LM block "
          f"{BLOCK_SIZE}; {torch.get_num_threads()} threads")  # fmt: skip
    print(f"median {opts.clock} time of {opts.repeats} interleaved repeats")
    times = measure(opts.repeats, CLOCKS[opts.clock])
    base = statistics.median(times["ar"])
    print(f"  {'step':10s} {'median s':>9s} {'x AR':>6s} {'target':>7s}")
    ok = True
    for name, ts in times.items():
        ratio = statistics.median(ts) / base
        target = TARGETS.get(name)
        ok &= target is None or ratio <= target
        mark = "" if target is None else f"<= {target:.2f}  {'ok' if ratio <= target else 'MISSED'}"
        print(f"  {name:10s} {statistics.median(ts):9.3f} {ratio:6.2f}  {mark}")
    if opts.profile:
        profile_bd3lm()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
