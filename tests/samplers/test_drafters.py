"""A sampling drafter's q is exactly the distribution each token was drawn from given the prefix
and the tokens to its left (oracle: the model's own forward on that canvas)."""

import copy

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.samplers import BD3LMSampler, MDLMSampler, SpeculativeStats
from a2dkit.samplers.drafters import proposal_drafter

PREFIX, K, TEMPERATURE = [5, 17, 42, 8], 4, 0.8


@pytest.fixture(scope="module")
def drafter_model(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    a2d, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    return a2d.double().eval(), tok


def _oracle_q(model, mask_id: int, canvas: list[int], column: int) -> torch.Tensor:
    """softmax(logits / T) at ``column`` of a bidirectional forward, the mask suppressed."""
    with torch.no_grad():
        logits = model(torch.tensor([canvas])).logits[0, column].clone()
    logits[mask_id] = float("-inf")
    return torch.softmax(logits / TEMPERATURE, -1)


@pytest.mark.parametrize("steps", [1, K])
def test_mdlm_proposals_are_the_left_to_right_conditionals(drafter_model, steps):
    model, tok = drafter_model
    stats = SpeculativeStats()
    draft = proposal_drafter(MDLMSampler(model, tok), TEMPERATURE, stats, steps=steps)(PREFIX, K)
    assert len(draft.tokens) == K and draft.q.shape == (K, model.config.vocab_size)
    assert stats.drafter_forwards == steps
    for i in range(K):
        seen = i if steps == K else 0  # one token per forward: the canvas holds tokens[:i]
        canvas = PREFIX + draft.tokens[:seen] + [tok.mask_token_id] * (K - seen)
        want = _oracle_q(model, tok.mask_token_id, canvas, len(PREFIX) + i)
        torch.testing.assert_close(draft.q[i], want, rtol=1e-9, atol=1e-12)
        assert draft.q[i, draft.tokens[i]] > 0


def test_bd3lm_proposals_are_distributions_over_the_drafted_tokens(drafter_model):
    model, tok = drafter_model
    draft = proposal_drafter(BD3LMSampler(model, tok), TEMPERATURE)(PREFIX, K)
    sums = draft.q.sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert all(draft.q[i, t] > 0 for i, t in enumerate(draft.tokens))
    assert (draft.q[:, tok.mask_token_id] == 0).all()  # a mask is never proposed


def test_proposal_drafter_refuses_what_would_bias_q(drafter_model):
    model, tok = drafter_model
    sampler = MDLMSampler(model, tok)
    with pytest.raises(ValueError, match="temperature=0"):
        proposal_drafter(sampler, 0.0)
    with pytest.raises(ValueError, match=r"\['remasking', 'threshold'\] cannot be set"):
        proposal_drafter(sampler, 1.0, remasking="low_confidence", threshold=0.9)
