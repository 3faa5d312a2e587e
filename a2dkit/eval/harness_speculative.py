"""``speculative=source|self`` in the ``--model_args`` of ``a2d_mdlm`` / ``a2d_bd3lm``: the A2D
model drafts ``draft_length`` tokens at a time, an AR verifier (the source model, or the same
weights in causal mode) keeps the longest prefix it would have chosen itself, so ``generate_until``
returns the verifier's greedy output token for token. Likelihoods are not affected.

Run: ``python -m a2dkit.eval --model a2d_bd3lm --tasks gsm8k_cot --model_args
"pretrained=DIR,max_new_tokens=256,steps=256,speculative=source,draft_length=8"``
References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192); MDLM arXiv
2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from a2dkit.eval.harness_config import A2DEvalConfig
from a2dkit.models.loading import load_config
from a2dkit.samplers.drafters import sampler_drafter
from a2dkit.samplers.one_pass import one_pass_self_decode
from a2dkit.samplers.speculative import (
    CausalVerifier,
    SpeculativeStats,
    speculative_decode_batch,
)
from a2dkit.samplers.verifiers import MANIFEST, load_ar_verifier, manifest_source

__all__ = ["verifier_path", "SpeculativeGeneration", "build"]

logger = logging.getLogger(__name__)


def verifier_path(config: A2DEvalConfig) -> str | None:
    """The AR verifier of ``speculative=source`` (``verifier_path``, else the source recorded in
    ``pretrained``'s manifest), checked before any weights load; None when off or ``self``.

    Raises:
        ValueError: no source recorded and no ``verifier_path``, or an A2D model as verifier.
    """
    if config.speculative != "source":
        return None
    path, trust = config.verifier_path, config.trust_remote_code
    if path is None and isinstance(config.pretrained, (str, Path)):
        path = manifest_source(str(config.pretrained), trust)
    if path is None:
        raise ValueError(f"pretrained={config.pretrained!r} records no source (no {MANIFEST}): "
                         "pass verifier_path=<AR model> in model_args")  # fmt: skip
    _, ar_config = load_config(path, trust)
    if ar_config.model_type.startswith("a2d-"):
        raise ValueError(f"verifier_path={path!r} is an A2D model; for its AR mode use "
                         "speculative=self with it as pretrained")  # fmt: skip
    return path


class SpeculativeGeneration:
    """Greedy speculative decoding of the harness's prompts (one padded batch; ``one-pass``: one
    row at a time), with running statistics (``stats``, a ``SpeculativeStats``)."""

    def __init__(self, config: A2DEvalConfig, path: str | None, model, tokenizer, sampler):
        self.config, self.tokenizer, self.stats = config, tokenizer, SpeculativeStats()
        self.model, self.mask_id = model, sampler.mask_id
        if config.speculative == "one-pass":
            CausalVerifier(model)  # refuses a model without a causal path
            self.verifier = self.draft = None
            return
        if path is None:
            self.verifier = CausalVerifier(model)  # refuses a model without a causal path
        else:
            self.verifier = load_ar_verifier(
                path, tokenizer, model.device, dtype=config.dtype,
                trust_remote_code=config.trust_remote_code,
                allow_pickle_weights=config.allow_pickle_weights,
            )  # fmt: skip
        share = math.ceil(config.steps * config.draft_length / config.max_new_tokens)
        self.draft = sampler_drafter(sampler, self.stats, steps=max(1, share),
                                     remasking=config.remasking, threshold=config.threshold,
                                     right_shift_logits=config.right_shift_logits)  # fmt: skip

    def generate(self, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """The verifier's greedy continuation of every prompt (up to its EOS, included)."""
        eos = self.tokenizer.eos_token_id
        start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else eos
        prompts, k = [list(ids) or [start] for ids in prompts], self.config.draft_length
        if self.config.speculative == "one-pass":
            rows = [one_pass_self_decode(self.model, ids, max_new_tokens, k, self.mask_id,
                                         candidates=self.config.draft_candidates,
                                         eos_token_id=eos, stats=self.stats,
                                         right_shift_logits=self.config.right_shift_logits)
                    for ids in prompts]  # fmt: skip
        else:
            rows = speculative_decode_batch(self.verifier, self.draft, prompts, max_new_tokens, k,
                                            eos_token_id=eos, stats=self.stats)  # fmt: skip
        logger.info(
            "speculative: %.2f accepted per verifier forward, %.2f forwards per token",
            self.stats.accepted_per_verifier_forward,
            self.stats.forwards_per_token,
        )
        return rows


def build(config: A2DEvalConfig, path: str | None, model, tokenizer, sampler):
    """A ``SpeculativeGeneration`` when ``config.speculative`` is set, else None."""
    if config.speculative is None:
        return None
    return SpeculativeGeneration(config, path, model, tokenizer, sampler)
