"""Offline tiny assets: a byte-level BPE tokenizer, tiny configs of each family, a tiny AR Qwen3.

These are the source models of every CPU-scale notebook and test (Qwen/Qwen3-0.6B at warmup/full).
Run: python -m a2dkit.tiny --output_dir runs/tiny-ar-qwen3
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (A2D starts from a pretrained AR model).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

SUPPORTED_FAMILIES = ("qwen3", "qwen2", "llama", "mistral", "gpt2")
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Qwen-style ChatML: the SFT path is the same as for Qwen3
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048):
    """Byte-level BPE on ``texts``; eos = pad = ``<|endoftext|>``, plus the ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        chat_template=CHAT_TEMPLATE,
    )


def load_tiny_tokenizer(vocab_size: int = 2048):
    """The tiny-shakespeare tokenizer, trained once and cached under the a2dkit cache dir."""
    from transformers import AutoTokenizer

    from a2dkit import corpus

    path = corpus.cache_dir() / f"tokenizer-{vocab_size}"
    if not (path / "tokenizer.json").exists():
        texts = corpus.load_tiny_shakespeare()["train"][corpus.TEXT_FIELD]
        train_tokenizer(texts, vocab_size).save_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def padded_vocab_size(n: int, multiple: int = 64) -> int:
    """Round up so the model keeps spare embedding rows (as Qwen3: 151936 > len(tokenizer))."""
    return multiple * math.ceil(n / multiple)


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
    **overrides,
):
    """A small config of a supported family (random weights are built from it, never downloaded)."""
    import transformers as tf

    if family not in SUPPORTED_FAMILIES:
        raise ValueError(f"family={family!r} is not one of {SUPPORTED_FAMILIES}")
    if family == "gpt2":
        return tf.GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_layer=num_hidden_layers,
            n_head=num_attention_heads,
            n_positions=max_position_embeddings,
            n_inner=intermediate_size,
            bos_token_id=0,
            eos_token_id=0,
            **overrides,
        )
    config_cls = {
        "qwen3": tf.Qwen3Config,
        "qwen2": tf.Qwen2Config,
        "llama": tf.LlamaConfig,
        "mistral": tf.MistralConfig,
    }[family]
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        head_dim=hidden_size // num_attention_heads,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    if family == "mistral":
        kwargs["sliding_window"] = None  # full attention (sliding windows are refused by convert)
    return config_cls(**{**kwargs, **overrides})


def tiny_model(
    family: str, vocab_size: int = 2112, seed: int = 0, attn_implementation: str = "sdpa", **cfg
):
    """A random-init fp32 causal LM of ``family`` in eval mode."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        tiny_config(family, vocab_size, **cfg), attn_implementation=attn_implementation
    )
    return model.float().eval()


@dataclass
class TinyARArguments:
    """Flags of ``python -m a2dkit.tiny`` (pretraining the tiny AR source model)."""

    output_dir: str = field(metadata={"help": "where to save the AR checkpoint"})
    max_steps: int = 600
    seq_len: int = 128
    batch_size: int = 16
    learning_rate: float = 3e-3
    hidden_size: int = 128
    num_hidden_layers: int = 4
    vocab_size: int = 2048
    seed: int = 0
    log_every: int = 50


def _token_stream(tokenizer, split: str) -> torch.Tensor:
    from a2dkit import corpus

    texts = corpus.load_tiny_shakespeare()[split][corpus.TEXT_FIELD]
    ids = []
    for text in texts:
        ids += tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    return torch.tensor(ids)  # (N,)


def _windows(stream: torch.Tensor, args: TinyARArguments, gen: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(stream) - args.seq_len, (args.batch_size,), generator=gen)
    return torch.stack([stream[s : s + args.seq_len] for s in starts.tolist()])  # (B, L)


@torch.no_grad()
def _eval_loss(model, stream: torch.Tensor, seq_len: int, max_batches: int = 20) -> float:
    model.eval()
    chunks = stream[: len(stream) // seq_len * seq_len].view(-1, seq_len)[: max_batches * 8]
    losses = [model(c, labels=c).loss.item() for c in chunks.split(8)]
    model.train()
    return sum(losses) / len(losses)


def pretrain_tiny_ar(args: TinyARArguments) -> dict:
    """Pretrain a tiny AR Qwen3 on tiny-shakespeare (next-token loss, AdamW, warmup + cosine)."""
    tokenizer = load_tiny_tokenizer(args.vocab_size)
    model = tiny_model(
        "qwen3",
        padded_vocab_size(len(tokenizer)),
        seed=args.seed,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_hidden_layers,
        intermediate_size=3 * args.hidden_size,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
    ).train()
    train, test = _token_stream(tokenizer, "train"), _token_stream(tokenizer, "test")
    opt = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.01)
    warmup = max(1, args.max_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / args.max_steps))
    )
    gen, log, start = torch.Generator().manual_seed(args.seed), [], time.time()
    for step in range(1, args.max_steps + 1):
        batch = _windows(train, args, gen)  # (B, L)
        loss = model(batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
        if step % args.log_every == 0 or step == args.max_steps:
            log.append({"step": step, "loss": loss.item()})
    model.eval()
    prompt = tokenizer("ROMEO:", return_tensors="pt")["input_ids"]
    out = model.generate(
        prompt, max_new_tokens=40, do_sample=False, pad_token_id=tokenizer.eos_token_id
    )
    return {
        "train_loss": log[-1]["loss"],
        "eval_loss": _eval_loss(model, test, args.seq_len),
        "steps": args.max_steps,
        "seconds": round(time.time() - start, 1),
        "num_parameters": model.num_parameters(),
        "sample": tokenizer.decode(out[0]),
        "log": log,
        "model": model,
        "tokenizer": tokenizer,
    }


def build_tiny_ar(args: TinyARArguments) -> dict:
    """Pretrain and save (safetensors + tokenizer); reuse a finished run with the same args."""
    out = Path(args.output_dir)
    done = out / "tiny_ar_result.json"
    if done.exists() and json.loads(done.read_text()).get("args") == asdict(args):
        return json.loads(done.read_text())
    result = pretrain_tiny_ar(args)
    model, tokenizer = result.pop("model"), result.pop("tokenizer")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    result["args"] = asdict(args)
    done.write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(TinyARArguments).parse_args_into_dataclasses(argv)
    result = build_tiny_ar(args)
    print(json.dumps({k: v for k, v in result.items() if k not in ("log", "args")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
