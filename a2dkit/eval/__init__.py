"""Evaluation: Monte-Carlo ELBO likelihoods (``elbo``), exact match on held-out chat rows
(``exact_match``), a converted model against its source (``agreement``: chrF of the answers;
``retention``: likelihood on the same tokens; ``compare``: the retention benchmark's rows),
HumanEval offline (``humaneval``, run in ``sandbox``), sample quality (``quality``), and
lm-eval's ``a2d_mdlm`` / ``a2d_bd3lm`` models (``harness``, imported on its own: it needs lm_eval).
``python -m a2dkit.eval`` runs lm-eval.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992 (estimator).
"""

from a2dkit.eval.agreement import chrf, sentence_chrf
from a2dkit.eval.compare import Decoding, RetentionRow, decode, retention_row
from a2dkit.eval.elbo import ESTIMATORS, ELBOResult, bd3lm_elbo, mdlm_elbo, sample_masks
from a2dkit.eval.retention import LikelihoodGap, likelihood_gap

__all__ = [
    "ESTIMATORS",
    "ELBOResult",
    "sample_masks",
    "mdlm_elbo",
    "bd3lm_elbo",
    "chrf",
    "sentence_chrf",
    "LikelihoodGap",
    "likelihood_gap",
    "Decoding",
    "RetentionRow",
    "decode",
    "retention_row",
]
