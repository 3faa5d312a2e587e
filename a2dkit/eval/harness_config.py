"""The ``--model_args`` of the lm-eval models ``a2d_mdlm`` / ``a2d_bd3lm``: names, defaults and
checks (dLLM's eval wrappers), and the coercion of lm-eval's parsed strings to each field's type.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992 (estimator).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from a2dkit._env import MODEL_DTYPES
from a2dkit.eval import elbo
from a2dkit.samplers import SamplerConfig

__all__ = ["A2DEvalConfig", "SPECULATIVE_MODES"]

SPECULATIVE_MODES = ("source", "self", "one-pass")


@dataclass
class A2DEvalConfig:
    """The ``--model_args`` keys; names and defaults follow dLLM's eval wrappers and samplers.

    ``batch_size``: prompts per sampler call; ``mc_batch_size``: ELBO draws per forward.
    ``block_size`` default ``None`` = the sampler's (128 for MDLM, 32 for BD3LM); the ELBO uses
    it only for BD3LM. ``seed``: every likelihood request draws its masks from
    ``torch.Generator().manual_seed(seed)`` (order- and rank-independent, common random numbers).
    ``check_greedy``: decode each continuation and report whether it is reproduced (costly).
    ``speculative``: ``source`` (the AR model at ``verifier_path``, default the one the checkpoint's
    manifest records) or ``self`` (the model's own causal mode) verifies drafts of ``draft_length``
    tokens; ``generate_until`` is then the verifier's greedy output (arXiv 2211.17192), greedy only.
    ``one-pass``: ``self`` with the draft verified and the next one drafted in the same forward.
    """

    pretrained: Any = None  # path / Hub id, or an already loaded A2D model
    tokenizer: Any = None  # default: the tokenizer saved with ``pretrained``
    max_new_tokens: int = 128
    steps: int = 128
    block_size: int | None = None
    cfg_scale: float = 0.0
    temperature: float = 0.0
    remasking: str = "low_confidence"
    threshold: float | None = None
    right_shift_logits: bool | None = None  # default: as the checkpoint was trained
    mc_num: int = 128
    mc_batch_size: int = 32
    estimator: str = "count"
    seed: int = 0
    check_greedy: bool = False
    batch_size: int = 1
    max_batch_size: int | None = None  # accepted from lm-eval's CLI, unused
    max_length: int | None = None  # default: model.config.max_position_embeddings
    dtype: str = "auto"
    trust_remote_code: bool = False  # run the model's own code / unpickle only when asked for
    allow_pickle_weights: bool = False
    device: str | None = None  # default: the accelerate device, else cuda if available
    speculative: str | None = None  # source|self|one-pass: generate_until: the verifier's greedy
    draft_length: int = 8  # tokens per draft (speculative)
    draft_candidates: int = 1  # one-pass: the first drafted token's top m, verified as a tree
    verifier_path: str | None = None  # default (source): the manifest's source model

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> A2DEvalConfig:
        """Validate keys and coerce lm-eval's parsed strings; unknown keys raise ValueError."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise ValueError(f"unknown model_args key(s) {unknown}; valid keys: {valid}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(k, v, hints[k]) for k, v in kwargs.items()})

    def sampler_config(self, config_class: type[SamplerConfig]) -> SamplerConfig:
        """The sampler options (validated: steps, block_size, remasking, threshold)."""
        return config_class(
            max_new_tokens=self.max_new_tokens, steps=self.steps,
            block_size=self.block_size or config_class.block_size,
            temperature=self.temperature, cfg_scale=self.cfg_scale, remasking=self.remasking,
            threshold=self.threshold, right_shift_logits=self.right_shift_logits,
            return_history=False,
        )  # fmt: skip

    def __post_init__(self) -> None:
        if self.pretrained is None or self.pretrained == "":
            raise ValueError("model_args needs pretrained=<path or Hub id of an A2D model>")
        if self.dtype not in MODEL_DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not valid; choose one of {MODEL_DTYPES}")
        for name in ("mc_num", "mc_batch_size", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive int")
        if self.estimator not in elbo.ESTIMATORS:
            raise ValueError(f"estimator={self.estimator!r}; choose one of {elbo.ESTIMATORS}")
        self._check_speculative()

    def _check_speculative(self) -> None:
        """Options speculative decoding (greedy, an AR verifier) cannot honour, named."""
        m = self.draft_candidates
        if m < 1 or (m > 1 and self.speculative != "one-pass"):
            raise ValueError(f"draft_candidates={m} must be 1, or > 1 with speculative=one-pass "
                             f"(a draft tree), not speculative={self.speculative!r}")  # fmt: skip
        if self.speculative is None:
            if self.verifier_path is not None:
                raise ValueError(f"verifier_path={self.verifier_path!r} needs speculative=source")
            return
        if self.speculative not in SPECULATIVE_MODES:
            raise ValueError(f"speculative={self.speculative!r} is not valid; choose one of "
                             f"{SPECULATIVE_MODES} or omit it")  # fmt: skip
        if not 0 < self.draft_length <= self.max_new_tokens:
            raise ValueError(f"draft_length={self.draft_length} must lie in 1..max_new_tokens="
                             f"{self.max_new_tokens}")  # fmt: skip
        bad = {"temperature": (self.temperature, 0.0), "cfg_scale": (self.cfg_scale, 0.0)}
        for name, (value, valid) in bad.items():
            if value != valid:
                raise ValueError(f"speculative={self.speculative!r} is greedy and unguided: "
                                 f"{name}={value} is not valid; use {name}={valid}")  # fmt: skip
        if self.remasking == "random":
            raise ValueError("speculative cannot honour remasking='random'; use low_confidence")
        if self.speculative != "source" and self.verifier_path is not None:
            raise ValueError(f"verifier_path={self.verifier_path!r} is for speculative=source; "
                             "self verifies with the model's own weights")  # fmt: skip


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Cast a parsed model_args value to the field's type (e.g. ``temperature=0`` -> 0.0)."""
    kinds = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    if value is None or value == "None" or kinds == [Any]:
        return None if value == "None" else value
    kind = kinds[0]
    if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        if kind is int and not (isinstance(value, bool) or float(value) != int(float(value))):
            return int(float(value))
        if kind in (float, str) and not isinstance(value, bool):
            return kind(value)
    except ValueError:
        pass
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ValueError(f"{key}={value!r} (model_args or lm-eval flag) must be a {kind.__name__}")
