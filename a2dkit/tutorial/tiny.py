"""Offline tiny models: tiny configs of each family, and a tiny AR Qwen3 pretrained on
tiny-shakespeare (its tokenizer: ``a2dkit.tutorial.tiny_tokenizer``).

The source models of every CPU-scale notebook and test (Qwen/Qwen3-0.6B at warmup/full).
Run: python -m a2dkit.cli.tiny --output_dir runs/tiny-ar-qwen3
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (A2D starts from a pretrained AR model).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from a2dkit.data import shakespeare
from a2dkit.tutorial.tiny_tokenizer import load_tiny_tokenizer, train_texts

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

SUPPORTED_FAMILIES = ("qwen3", "qwen2", "llama", "mistral", "gpt2")
RESULT_FILE = "tiny_ar_result.json"
_CONFIG_CLASSES = {
    "qwen3": "Qwen3Config",
    "qwen2": "Qwen2Config",
    "llama": "LlamaConfig",
    "mistral": "MistralConfig",
    "gpt2": "GPT2Config",
}
_GPT2_NAMES = {  # GPT-2 spells the standard config fields differently
    "hidden_size": "n_embd",
    "num_hidden_layers": "n_layer",
    "num_attention_heads": "n_head",
    "max_position_embeddings": "n_positions",
    "intermediate_size": "n_inner",
}


def padded_vocab_size(n: int, multiple: int = 64) -> int:
    """``n`` rounded up to a multiple: spare embedding rows, as Qwen3's 151936 > len(tokenizer)."""
    if n < 1 or multiple < 1:
        raise ValueError(f"n={n} and multiple={multiple} must both be positive")
    return multiple * math.ceil(n / multiple)


def _check_dims(family: str, hidden: int, heads: int, kv_heads: int) -> None:
    if family not in SUPPORTED_FAMILIES:
        raise ValueError(f"family={family!r} is not supported; valid: {SUPPORTED_FAMILIES}")
    if hidden % heads:
        raise ValueError(f"hidden_size={hidden} must be divisible by num_attention_heads={heads}")
    if family != "gpt2" and heads % kv_heads:
        raise ValueError(
            f"num_attention_heads={heads} must be divisible by num_key_value_heads={kv_heads}"
        )


def tiny_config(
    family: str,
    vocab_size: int = 2112,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    **overrides: Any,
) -> PretrainedConfig:
    """A small config of ``family`` (random weights are built from it, never downloaded).

    Untied embeddings; token ids default to ``None`` (not the full-size model's, which would
    lie outside a tiny vocabulary). gpt2 has no GQA and ignores ``num_key_value_heads``.

    Args:
        family: one of :data:`!SUPPORTED_FAMILIES`.
        vocab_size: embedding rows (use :func:`padded_vocab_size` to keep spare rows).
        overrides: any further config field; wins over the values above.
    """
    import transformers as tf

    _check_dims(family, hidden_size, num_attention_heads, num_key_value_heads)
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        head_dim=hidden_size // num_attention_heads,  # Qwen3 would default to 128
        tie_word_embeddings=False,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    if family == "gpt2":  # GPT-2 names, no GQA, no dropout (deterministic training)
        kwargs = {_GPT2_NAMES.get(k, k): v for k, v in kwargs.items()}
        del kwargs["num_key_value_heads"], kwargs["head_dim"]
        kwargs |= dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    if family == "mistral":
        kwargs["sliding_window"] = None  # full attention (convert refuses sliding windows)
    return getattr(tf, _CONFIG_CLASSES[family])(**{**kwargs, **overrides})


def tiny_model(
    family: str,
    vocab_size: int = 2112,
    seed: int = 0,
    attn_implementation: str = "sdpa",
    **cfg: Any,
) -> PreTrainedModel:
    """A random-init fp32 causal LM of ``family`` in eval mode (``torch.manual_seed(seed)`` first).

    Args:
        family, vocab_size, cfg: passed to :func:`tiny_config`.
        attn_implementation: ``"sdpa"`` or ``"eager"`` (any transformers back-end name).
    """
    from transformers import AutoModelForCausalLM

    config = tiny_config(family, vocab_size, **cfg)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        config, attn_implementation=attn_implementation, dtype=torch.float32
    )
    return model.eval()


@dataclass
class TinyARArguments:
    """What :func:`pretrain_tiny_ar` trains (the flags of ``python -m a2dkit.cli.tiny``)."""

    output_dir: str = field(metadata={"help": "where to save the AR checkpoint"})
    max_steps: int = 600
    seq_len: int = 128
    batch_size: int = 16
    learning_rate: float = 3e-3
    hidden_size: int = 128
    num_hidden_layers: int = 4
    vocab_size: int = field(default=2048, metadata={"help": "tokenizer size (before padding)"})
    seed: int = 0
    log_every: int = 50

    def __post_init__(self) -> None:
        for name in ("max_steps", "seq_len", "batch_size", "hidden_size", "num_hidden_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.learning_rate <= 0 or self.log_every < 1:
            raise ValueError(f"learning_rate={self.learning_rate} must be > 0 and log_every >= 1")


def _token_stream(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> torch.Tensor:
    """All rows tokenized and concatenated, ``<|endoftext|>`` after each row."""
    ids = tokenizer(list(texts))["input_ids"]
    return torch.tensor([i for row in ids for i in (*row, tokenizer.eos_token_id)])  # (N,)


def _lr_factor(step: int, max_steps: int) -> float:
    """Linear warmup over the first 5% of steps, then cosine decay to 0."""
    warmup = max(1, max_steps // 20)
    return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / max_steps))


@torch.no_grad()
def _eval_loss(model: PreTrainedModel, stream: torch.Tensor, seq_len: int) -> float:
    """Token-weighted mean next-token loss over all non-overlapping windows of ``stream``."""
    windows = stream[: len(stream) // seq_len * seq_len].view(-1, seq_len)  # (W, L)
    losses = [model(w, labels=w).loss.item() for w in windows.split(32)]
    sizes = [len(w) for w in windows.split(32)]
    return sum(x * n for x, n in zip(losses, sizes, strict=True)) / sum(sizes)


def _train(model: PreTrainedModel, stream: torch.Tensor, a: TinyARArguments) -> list[dict]:
    """AdamW + warmup/cosine on random windows of ``stream``; returns the loss log."""
    opt = torch.optim.AdamW(model.parameters(), lr=a.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, a.max_steps))
    gen, log, window = torch.Generator().manual_seed(a.seed), [], []
    model.train()
    for step in range(1, a.max_steps + 1):
        starts = torch.randint(0, len(stream) - a.seq_len, (a.batch_size,), generator=gen)
        batch = torch.stack([stream[s : s + a.seq_len] for s in starts.tolist()])  # (B, L)
        loss = model(batch, labels=batch).loss  # next-token cross-entropy (shift inside)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        window.append(loss.item())
        if step % a.log_every == 0 or step == a.max_steps:  # mean loss since the last entry
            log.append(
                {"step": step, "loss": sum(window) / len(window), "lr": sched.get_last_lr()[0]}
            )
            window = []
    return log


def _tiny_qwen3(args: TinyARArguments, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    """The untrained tiny AR Qwen3 of ``args``: 4 heads, 2 KV heads, MLP width 3 x hidden."""
    eos = tokenizer.eos_token_id
    return tiny_model(
        "qwen3",
        padded_vocab_size(len(tokenizer)),
        seed=args.seed,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        intermediate_size=3 * args.hidden_size,
        max_position_embeddings=max(512, args.seq_len),
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )


@torch.no_grad()
def _summarise(model, tokenizer, args: TinyARArguments, log: list[dict]) -> dict[str, Any]:
    """Held-out loss (the test split) and a greedy sample from "ROMEO:" of the trained model."""
    model.eval()
    test = shakespeare.load_tiny_shakespeare()["test"][shakespeare.TEXT_FIELD]
    prompt = tokenizer("ROMEO:", return_tensors="pt")["input_ids"]  # (1, P)
    sample = model.generate(prompt, max_new_tokens=48, do_sample=False)  # (1, P + new)
    return {
        "train_loss": log[-1]["loss"],
        "eval_loss": _eval_loss(model, _token_stream(tokenizer, test), args.seq_len),
        "steps": args.max_steps,
        "num_parameters": model.num_parameters(),
        "sample": tokenizer.decode(sample[0]),
    }


def _save(model, tokenizer, log: list[dict], output_dir: str | Path) -> None:
    """A normal HF checkpoint (safetensors + tokenizer) and its ``train_log.json``."""
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    (Path(output_dir) / "train_log.json").write_text(json.dumps(log, indent=1))


def pretrain_tiny_ar(args: TinyARArguments) -> dict[str, Any]:
    """Pretrain a tiny AR Qwen3 on tiny-shakespeare and save it as a normal HF checkpoint.

    Plain next-token loss, AdamW, warmup + cosine decay, random windows of the concatenated
    train split (eos between rows); the model gets :func:`padded_vocab_size` embedding rows.

    Returns:
        ``train_loss`` (mean over the last log window), ``eval_loss`` (test split), ``steps``,
        ``seconds``, ``num_parameters``, greedy ``sample`` from "ROMEO:", ``log`` and
        ``corpus_sha256`` (the train split the run used).
    """
    start = time.time()
    tokenizer = load_tiny_tokenizer(args.vocab_size)
    model = _tiny_qwen3(args, tokenizer)
    texts, digest = train_texts()
    log = _train(model, _token_stream(tokenizer, texts), args)
    result = _summarise(model, tokenizer, args, log)
    _save(model, tokenizer, log, args.output_dir)
    seconds = round(time.time() - start, 1)
    return {**result, "seconds": seconds, "log": log, "corpus_sha256": digest}


def build_tiny_ar(args: TinyARArguments) -> dict[str, Any]:
    """:func:`pretrain_tiny_ar` unless ``args.output_dir`` holds a finished run of the same args.

    A run counts as finished when ``tiny_ar_result.json`` (written last) records the same
    arguments (``output_dir`` aside) and the same corpus; its stored result is returned.
    """
    out, key = Path(args.output_dir), {k: v for k, v in asdict(args).items() if k != "output_dir"}
    done = out / RESULT_FILE
    if done.exists() and (out / "config.json").exists():
        stored = json.loads(done.read_text())
        if stored.get("args") == key and stored.get("corpus_sha256") == train_texts()[1]:
            return stored
    result = pretrain_tiny_ar(args)
    done.write_text(json.dumps({**result, "args": key}, indent=2))
    return {**result, "args": key}
