"""AR -> diffusion conversion: detect, convert (weights unchanged, mask token added), identity gate.

Run: python -m a2dkit.convert --model_name_or_path Qwen/Qwen3-0.6B --output_dir models/a2d/Qwen3
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D convert.py (same flags).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from a2dkit import families, loading, modeling

# registered at import; any other decoder-only family converts if the contract holds on it
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(modeling.FAMILIES)
MASK_TOKEN = "<|mask|>"
# state-dict keys allowed to differ between the source and the A2D model (none today: same classes)
STATE_DICT_ALLOW_LIST: frozenset[str] = frozenset()


class UnsupportedModelError(ValueError):
    """The model cannot be converted; the message names its ``model_type`` and every reason."""


@dataclass
class Verdict:
    """What :func:`detect` found out from a config alone."""

    model_type: str
    supported: bool
    family: str | None = None
    target_model_type: str | None = None
    actions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def raise_if_unsupported(self) -> None:
        if not self.supported:
            raise UnsupportedModelError(
                f"model_type={self.model_type!r} is not supported: {'; '.join(self.reasons)}. "
                "See book/support_matrix.md (python -m a2dkit.support_matrix) for every family"
            )

    def __str__(self) -> str:
        head = f"model_type={self.model_type!r}: " + ("supported" if self.supported else "REFUSED")
        lines = [f"  - will {a}" for a in self.actions] + [f"  - reason: {r}" for r in self.reasons]
        return "\n".join([head, *lines])


def load_config(model_name_or_path: str | os.PathLike, trust_remote_code: bool = False):
    """``AutoConfig.from_pretrained`` with a clear error for unknown paths (a cached Hub id
    loads offline); custom code runs only with ``trust_remote_code``, never after a prompt."""
    return loading.load_config(model_name_or_path, trust_remote_code)[1]


def _refusal_reasons(config: PretrainedConfig) -> list[str]:
    reasons = [f"{key}: {text}" for key, text in families.static_refusals(config)]
    impl = getattr(config, "_attn_implementation", None)
    if impl not in (None, *modeling.MASKABLE_ATTENTION):
        reasons.append(f"attn_implementation={impl!r} is causal-only; use sdpa or eager")
    return reasons


def detect(config_or_path, trust_remote_code: bool = False) -> Verdict:
    """Read only the config (no weights, no GPU) and say whether and how it converts.

    Args:
        config_or_path: a ``PretrainedConfig``, a config dict, a local directory or a Hub id.
    """
    if isinstance(config_or_path, dict):
        config = AutoConfig.for_model(**config_or_path)
    elif isinstance(config_or_path, PretrainedConfig):
        config = config_or_path
    else:
        config = load_config(config_or_path, trust_remote_code)
    reasons = _refusal_reasons(config)
    verdict = Verdict(model_type=config.model_type, supported=not reasons, reasons=reasons)
    if verdict.supported:
        verdict.family = config.model_type
        verdict.target_model_type = modeling.a2d_model_type(config.model_type)
        verdict.actions = [
            f"relabel model_type {config.model_type!r} -> {verdict.target_model_type!r}",
            "set is_causal=False: bidirectional attention (MDLM) or staircase masks (BD3LM)",
            f"add the mask token {MASK_TOKEN} (reuse a spare embedding row if the vocab has one, "
            "else resize the embeddings)",
            "keep every weight bit-identical; check the causal identity gate before saving",
            "run the attention contract (float64) on a tiny random instance of the family first",
        ]
        if families.window_note(config) is not None:
            verdict.actions.append(families.window_note(config))
    return verdict


def add_mask_token(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, mask_token=MASK_TOKEN
):
    """Add ``mask_token`` to the tokenizer; resize the embeddings only if no spare row exists.

    Returns:
        (mask_token_id, reused_spare_row)
    """
    if tokenizer.mask_token_id is None:
        tokenizer.add_special_tokens({"mask_token": mask_token})
    mask_id = tokenizer.mask_token_id
    rows = model.get_input_embeddings().weight.shape[0]
    reused = mask_id < rows
    if not reused:  # never produce an id outside the embedding matrix
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        init_new_rows(model, rows)
    model.config.mask_token_id = mask_id
    return mask_id, reused


def init_new_rows(model: PreTrainedModel, old_rows: int) -> None:
    """Rows ``old_rows:`` of the input (and untied output) embeddings = the mean of the old rows.

    Deterministic, unlike the random rows ``resize_token_embeddings`` draws (the expected value of
    its ``mean_resizing``): converting the same source twice gives the same weights, so a run
    converted in memory equals one started from a converted checkpoint.
    """
    layers = (model.get_input_embeddings(), model.get_output_embeddings())
    weights = {id(m.weight): m.weight for m in layers if m is not None}  # tied: one tensor
    with torch.no_grad():
        for w in weights.values():
            w[old_rows:] = w[:old_rows].mean(0)


def check_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Diffusion sampling and SFT stop on EOS: a tokenizer without one is refused."""
    if tokenizer.eos_token_id is None:
        raise ValueError(
            f"tokenizer {type(tokenizer).__name__} has no eos_token; set one "
            "(e.g. tokenizer.eos_token = '<|endoftext|>') before converting"
        )


def to_diffusion_model(model: PreTrainedModel) -> PreTrainedModel:
    """The A2D counterpart of an in-memory AR model: same weights, ``model_type`` a2d-<family>."""
    detect(model.config).raise_if_unsupported()
    family = model.config.model_type
    config_cls, lm_cls = families.register(family)
    cfg = model.config.to_dict()
    cfg.pop("model_type", None)
    cfg.pop("architectures", None)
    config = config_cls(**cfg, is_causal=False)
    config._attn_implementation = model.config._attn_implementation
    a2d = lm_cls(config).to(model.dtype)
    result = a2d.load_state_dict(model.state_dict(), strict=False)
    bad = (set(result.missing_keys) | set(result.unexpected_keys)) - STATE_DICT_ALLOW_LIST
    if bad:
        raise RuntimeError(f"state dict mismatch after conversion (not in the allow-list): {bad}")
    return a2d


def to_diffusion(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, mask_token=MASK_TOKEN):
    """Convert an in-memory AR model into its A2D counterpart (weights copied, never changed).

    Returns:
        (a2d_model, tokenizer, info) where info holds ``mask_token_id`` and ``reused_spare_row``.
    """
    detect(model.config).raise_if_unsupported()
    check_tokenizer(tokenizer)
    a2d = to_diffusion_model(model)
    mask_id, reused = add_mask_token(a2d, tokenizer, mask_token)
    a2d.eval()
    family = model.config.model_type
    return a2d, tokenizer, {"mask_token_id": mask_id, "reused_spare_row": reused, "family": family}


def contract_gate(config: PretrainedConfig, attn_implementation: str = "sdpa") -> dict:
    """The contract in float64 on a tiny random instance of ``config``'s family.

    Raises:
        UnsupportedModelError: naming the failing check and its number.
    """
    from a2dkit.contract_generic import first_failure, gate_family

    try:
        results = gate_family(config, attns=(attn_implementation,))
    except Exception as err:  # a family that builds but cannot even run the contract
        raise UnsupportedModelError(
            f"model_type={config.model_type!r} is refused: {families.CONTRACT}: the contract "
            f"could not run on a tiny instance ({type(err).__name__}: {err})"
        ) from err
    failure = first_failure(results)
    if failure is not None:
        raise UnsupportedModelError(
            f"model_type={config.model_type!r} is refused: {families.CONTRACT} on a tiny float64 "
            f"instance of the family: {failure}"
        )
    return {a: {r.name: r.value for r in checks} for a, checks in results.items()}


@torch.no_grad()
def identity_gate(
    source: PreTrainedModel, converted: PreTrainedModel, input_ids: torch.Tensor, atol: float = 1e-5
) -> dict:
    """Driven with a causal mask, the converted model must reproduce the source logits (fp32).

    Args:
        input_ids: (B, L) long, ids inside the source vocabulary.
    """
    seq_len = input_ids.shape[1]
    causal = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))[None, None]  # (1, 1, L, L)
    dtypes = source.dtype, converted.dtype
    ref = source.float()(input_ids).logits  # (B, L, V)
    out = converted.float()(input_ids, attention_mask=causal.expand(len(input_ids), -1, -1, -1))
    source.to(dtypes[0]), converted.to(dtypes[1])  # the gate runs in fp32, the models keep theirs
    vocab = ref.shape[-1]
    diff = (out.logits[..., :vocab] - ref).abs().max().item()
    return {
        "max_abs_diff": diff,
        "atol": atol,
        "passed": bool(diff <= atol),
        "batch_shape": list(input_ids.shape),
    }


def gate_batch(vocab_size: int, batch: int = 2, seq_len: int = 16, seed: int = 0) -> torch.Tensor:
    """The fixed batch the identity gate runs on: (batch, seq_len) ids drawn with a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, seq_len), generator=gen)


def manifest_dict(**entries) -> dict:
    """Versions and provenance written beside every converted checkpoint."""
    import transformers

    from a2dkit import __version__

    versions = {
        "a2dkit": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    return {
        "versions": versions,
        **{k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in entries.items()},
    }


def _check_output_dir(output_dir: Path, overwrite: bool, source: str) -> None:
    if Path(source).is_dir() and output_dir.resolve() == Path(source).resolve():
        raise ValueError(
            f"output_dir={str(output_dir)!r} is the source model's directory; converting there "
            "would overwrite the source config and weights: choose another output_dir"
        )
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ValueError(
            f"output_dir={str(output_dir)!r} exists and is not empty; "
            "pass --overwrite True or choose another directory"
        )


def convert(
    model_name_or_path: str,
    output_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
    attn_implementation: str = "sdpa",
    mask_token: str = MASK_TOKEN,
    gguf_file: str | None = None,
    dtype: str = "auto",
) -> Path:
    """Convert a checkpoint on disk (or on the Hub) and save a standard HF checkpoint + manifest.

    Every check (output dir, config or GGUF header, architecture, weight format, dtype) runs
    before the weights load; nothing is written unless the identity gate passes.

    Args:
        gguf_file: a GGUF file inside ``model_name_or_path`` to convert instead of safetensors
            (dequantised; needs ``pip install "a2dkit[gguf]"``).
        dtype: ``auto`` (the checkpoint's dtype; float32 for GGUF), ``float32``, ``bfloat16``, ...
    """
    import json

    from a2dkit import sources

    out, name = Path(output_dir), str(model_name_or_path)
    if gguf_file is None:
        path = loading.resolve_model_path(name)  # a cached Hub id -> its local snapshot
        loading.check_remote_code(path, trust_remote_code)
    else:
        path = name  # a directory holding the GGUF file (no config.json)
    _check_output_dir(out, overwrite, path)
    modeling.check_attention_implementation(attn_implementation)
    sources.torch_dtype(dtype)  # validates the name
    plan = sources.plan_source(path, gguf_file, trust_remote_code, allow_pickle_weights)
    plan.manifest["name_or_path"] = name
    config = plan.config
    families.check_attention_support(config.model_type, attn_implementation)
    contract = contract_gate(config, attn_implementation)
    source, tokenizer = sources.load_source(plan, dtype, attn_implementation)
    converted, tokenizer, info = to_diffusion(source, tokenizer, mask_token)
    gate = identity_gate(source, converted, gate_batch(source.config.vocab_size))
    if not gate["passed"]:
        raise RuntimeError(f"identity gate failed, nothing saved: {gate}")
    out.mkdir(parents=True, exist_ok=True)
    converted.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    manifest = manifest_dict(
        source=plan.manifest,
        dtype=str(converted.dtype).removeprefix("torch."),
        verdict=plan.verdict,
        identity_gate=gate,
        contract_tiny_float64=contract,
        **info,
    )
    (out / "a2d_manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


@dataclass
class ConvertArguments:
    """Flags of ``python -m a2dkit.convert`` (dLLM's names where they exist)."""

    model_name_or_path: str = field(metadata={"help": "AR source: local dir or Hub id"})
    output_dir: str | None = field(default=None, metadata={"help": "where to save the A2D model"})
    overwrite: bool = False
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    attn_implementation: str = "sdpa"
    mask_token: str = MASK_TOKEN
    gguf_file: str | None = field(
        default=None, metadata={"help": "GGUF file inside model_name_or_path (dequantised)"}
    )
    dtype: str = field(
        default="auto", metadata={"help": "auto (checkpoint's; float32 for GGUF), float32, ..."}
    )
    detect_only: bool = field(default=False, metadata={"help": "print the verdict and exit"})


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ConvertArguments).parse_args_into_dataclasses(argv)
    if args.gguf_file is not None:
        from a2dkit import sources

        verdict = sources.plan_source(args.model_name_or_path, args.gguf_file).verdict
    else:
        verdict = detect(args.model_name_or_path, args.trust_remote_code)
    print(verdict)
    if args.detect_only:
        return 0 if verdict.supported else 1
    if args.output_dir is None:
        raise ValueError("--output_dir is required unless --detect_only True")
    out = convert(
        args.model_name_or_path,
        args.output_dir,
        overwrite=args.overwrite,
        trust_remote_code=args.trust_remote_code,
        allow_pickle_weights=args.allow_pickle_weights,
        attn_implementation=args.attn_implementation,
        mask_token=args.mask_token,
        gguf_file=args.gguf_file,
        dtype=args.dtype,
    )
    print(f"converted -> {out}")
    return 0


if __name__ == "__main__":
    from a2dkit.cli.errors import run_cli

    raise SystemExit(run_cli(main))
