"""How a verifier judges a draft: greedy matching (temperature 0), or speculative sampling's
accept-with-min(1, p/q) and resample-from-the-residual rule, whose output is distributed exactly
as the verifier's own samples, whatever the drafter's q.

References: Leviathan et al. 2023, arXiv 2211.17192 (§2.3, Algorithm 1); Chen et al. 2023,
arXiv 2302.01318 (the same rule, Theorem 1).
"""

from __future__ import annotations

import torch

__all__ = ["greedy_accept", "greedy_tree_accept", "residual_distribution", "speculative_accept"]


def greedy_accept(draft: list[int], logits: torch.Tensor) -> tuple[int, int]:
    """The longest draft prefix equal to the verifier's argmax choices, and its next token.

    Args:
        draft: k drafted ids; logits: (k + 1, V), row i scores the token after draft[:i].

    Returns:
        (n accepted, the verifier's token after them).
    """
    choices = logits.argmax(-1).tolist()  # (k + 1,)
    n = 0
    while n < len(draft) and draft[n] == choices[n]:
        n += 1
    return n, choices[n]


def greedy_tree_accept(
    tokens: list[int], parents: list[int], logits: torch.Tensor
) -> tuple[list[int], int]:
    """Greedy matching on a draft tree (SpecInfer arXiv 2305.09781 §4): from column 0, follow the
    child whose token is the verifier's argmax while there is one.

    Args:
        tokens: the token of each verifying column (column 0: the last committed token);
        parents: each column's parent column (-1 for column 0); logits: (len(tokens), V), row i
            scores the token after column i and its ancestors.

    Returns:
        (the columns followed, 0 first; the verifier's token after the last of them).
    """
    choices = logits.argmax(-1).tolist()
    path = [0]
    while True:
        node = path[-1]
        child = next((c for c, parent in enumerate(parents)
                      if parent == node and tokens[c] == choices[node]), None)  # fmt: skip
        if child is None:
            return path, choices[node]
        path.append(child)


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)): where to resample after a rejection (arXiv 2211.17192, §2.3).

    Args:
        p, q: (V,) float64 probabilities of the verifier and the drafter.
    """
    residual = (p - q).clamp_min(0)  # Leviathan §2.3: p'(x) = norm(max(0, p(x) - q(x)))
    total = residual.sum()
    return residual / total if total > 0 else p  # p == q: a rejection has probability 0


def _widen(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the vocabulary axis: tokens a model cannot produce have probability 0."""
    return torch.nn.functional.pad(x, (0, width - x.shape[-1]))


def speculative_accept(
    draft: list[int],
    q: torch.Tensor,
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None = None,
) -> tuple[int, int]:
    """Speculative sampling (arXiv 2211.17192, Algorithm 1) on one draft.

    Token i is accepted with probability min(1, p_i(x_i) / q_i(x_i)); at the first rejection the
    next token is drawn from ``residual_distribution(p_i, q_i)``; after k acceptances from
    p_{k+1}. Exact when draft[i] was drawn from q[i] given the prefix and draft[:i].

    Args:
        draft: k drafted ids; q: (k, V') float, the distributions they were drawn from.
        logits: (k + 1, V) the verifier's scores; p = softmax(logits / temperature).
        temperature: > 0.

    Returns:
        (n accepted, the next token: a resample at the rejection, or a draw from p_{k+1}).
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0; use greedy_accept at 0")
    if q.shape[0] != len(draft) or logits.shape[0] != len(draft) + 1:
        raise ValueError(f"{len(draft)} drafts need q of k rows and logits of k + 1 rows, got "
                         f"{tuple(q.shape)} and {tuple(logits.shape)}")  # fmt: skip
    width = max(q.shape[-1], logits.shape[-1])
    p = _widen(torch.softmax(logits.double() / temperature, dim=-1), width)  # (k + 1, V)
    q = _widen(q.double().to(p.device), width)  # (k, V)
    u = torch.rand(len(draft), dtype=torch.float64, generator=generator).tolist()
    for i, x in enumerate(draft):
        if u[i] * q[i, x] < p[i, x]:  # accept w.p. min(1, p(x) / q(x)), u ~ U[0, 1)
            continue
        new = residual_distribution(p[i], q[i])
        return i, int(torch.multinomial(new.cpu(), 1, generator=generator))
    return len(draft), int(torch.multinomial(p[-1].cpu(), 1, generator=generator))
