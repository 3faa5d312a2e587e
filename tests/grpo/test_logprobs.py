"""diffu-GRPO log-probabilities against direct computations on a tiny float64 A2D model."""

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.diffusion.attention import block_causal_mask, padding_position_ids
from a2dkit.grpo import logprobs

BS = 4


@pytest.fixture(scope="module")
def a2d(small_tokenizer):
    import copy

    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    return model.double().eval(), tok


def _batch(pad_id: int):
    """Two left-padded prompts (3 and 6 tokens), 5-token completions, the second ending early."""
    prompts = [[11, 12, 13], [21, 22, 23, 24, 25, 26]]
    completions = [[31, 32, 33, 34, 35], [41, 42, 43, 0, 0]]
    width = max(map(len, prompts))
    rows = zip(prompts, completions, strict=True)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p + c for p, c in rows])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) + [1] * 5 for p in prompts])
    mask[1, -2:] = 0  # after EOS
    return prompts, completions, ids, mask


def test_prompt_mask_is_seeded_and_padding_invariant():
    valid = torch.tensor([[False, True, True, True], [True, True, True, True]])
    seeds = torch.tensor([7, 7])
    m = logprobs.prompt_mask(valid, seeds, 0.5)
    assert torch.equal(m, logprobs.prompt_mask(valid, seeds, 0.5))  # same seed, same mask
    assert torch.equal(m[0, 1:], m[1, 1:])  # same seed, aligned at the prompt end
    assert not m[0, 0]  # pads are never masked
    other = logprobs.prompt_mask(valid.repeat(8, 1), torch.arange(16), 0.5)
    assert len({tuple(r.tolist()) for r in other}) > 1  # different seeds, different masks
    assert not logprobs.prompt_mask(valid, seeds, 0.0).any()
    assert torch.equal(logprobs.prompt_mask(valid, seeds, 1.0), valid)


@pytest.mark.parametrize("p", [-0.1, 1.5, True])
def test_p_mask_prompt_outside_unit_interval_is_refused(p):
    with pytest.raises(ValueError, match="p_mask_prompt"):
        logprobs.check_p_mask_prompt(p)


@pytest.mark.parametrize("p_mask_prompt", [0.0, 0.5])
def test_mdlm_logprobs_equal_one_unpadded_forward_per_row(a2d, p_mask_prompt):
    model, tok = a2d
    prompts, completions, ids, mask = _batch(tok.pad_token_id)
    seeds = torch.tensor([3, 4])
    logits = logprobs.mdlm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds,
                                             p_mask_prompt=p_mask_prompt)  # fmt: skip
    got = logprobs.token_logprobs(logits, ids[:, -5:])
    for b, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        n = int(mask[b, -5:].sum())
        masked = logprobs.prompt_mask(torch.ones(1, len(p), dtype=torch.bool), seeds[b : b + 1],
                                      p_mask_prompt)[0]  # fmt: skip
        q = [tok.mask_token_id if m else t for t, m in zip(p, masked.tolist(), strict=True)]
        x = torch.tensor([q + [tok.mask_token_id] * 5])  # every completion column, as sampled
        ref = torch.log_softmax(model(x).logits[0, len(p) :], -1)  # (n, V)
        want = ref.gather(-1, torch.tensor(c[:n])[:, None]).squeeze(-1)
        torch.testing.assert_close(got[b, :n], want, atol=1e-10, rtol=0)


def test_prompt_masking_changes_the_mdlm_estimate(a2d):
    model, tok = a2d
    _, _, ids, mask = _batch(tok.pad_token_id)
    run = lambda p: logprobs.mdlm_completion_logits(  # noqa: E731
        model, ids, mask, 5, tok.mask_token_id, torch.tensor([3, 4]), p_mask_prompt=p
    )
    assert (run(0.0) - run(0.9)).abs().max() > 1e-6  # negative control: the mask is applied


def _bd3lm_direct(model, tok, prompt, completion, masked_prompt, causal_clean=False):
    """Per block b: the block sampler's first step, without a cache: [pad, q', o^{<b}, mask^b]
    (``causal_clean``: the clean prefix token-causal, as ``--clean_stream causal`` trains)."""
    q = [tok.mask_token_id if m else t for t, m in zip(prompt, masked_prompt, strict=True)]
    pad = (-len(q)) % BS
    rows = []
    for s in range(0, len(completion), BS):
        block = completion[s : s + BS]
        x = torch.tensor([[tok.pad_token_id] * pad + q + completion[:s] + [tok.mask_token_id] * BS])
        valid = torch.ones_like(x, dtype=torch.bool)
        valid[0, :pad] = False
        attn = block_causal_mask(valid, BS)
        if causal_clean:
            clean = torch.arange(x.shape[1]) < x.shape[1] - BS  # (L,) all but the masked block
            attn = torch.where(clean[:, None], block_causal_mask(valid, 1), attn)
        logits = model(x, attention_mask=attn, position_ids=padding_position_ids(valid)).logits
        logp = torch.log_softmax(logits[0, -BS:][: len(block)], -1)
        rows.append(logp.gather(-1, torch.tensor(block)[:, None]).squeeze(-1))
    return torch.cat(rows)


@pytest.mark.parametrize("p_mask_prompt", [0.0, 0.5])
def test_bd3lm_logprobs_equal_the_block_by_block_computation(a2d, p_mask_prompt):
    model, tok = a2d
    prompts, completions, ids, mask = _batch(tok.pad_token_id)
    seeds = torch.tensor([5, 6])
    logits = logprobs.bd3lm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds, BS,
                                              p_mask_prompt=p_mask_prompt)  # fmt: skip
    got = logprobs.token_logprobs(logits, ids[:, -5:])
    for b, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        masked = logprobs.prompt_mask(torch.ones(1, len(p), dtype=torch.bool), seeds[b : b + 1],
                                      p_mask_prompt)[0].tolist()  # fmt: skip
        torch.testing.assert_close(got[b], _bd3lm_direct(model, tok, p, c, masked), atol=1e-10,
                                   rtol=0)  # fmt: skip


def test_a_causal_clean_stream_checkpoint_is_scored_as_it_was_trained(a2d):
    """config.a2d_clean_stream = "causal": the clean prompt and earlier blocks are token-causal."""
    model, tok = a2d
    prompts, completions, ids, mask = _batch(tok.pad_token_id)
    seeds = torch.tensor([5, 6])
    model.config.a2d_clean_stream = "causal"
    try:
        logits = logprobs.bd3lm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds, BS)
    finally:
        del model.config.a2d_clean_stream
    got = logprobs.token_logprobs(logits, ids[:, -5:])
    for b, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        unmasked = [False] * len(p)
        want = _bd3lm_direct(model, tok, p, c, unmasked, causal_clean=True)
        torch.testing.assert_close(got[b], want, atol=1e-10, rtol=0)
        assert (got[b] - _bd3lm_direct(model, tok, p, c, unmasked)).abs().max() > 1e-8  # control


def test_bd3lm_with_one_block_covering_the_completion_differs_from_mdlm_only_by_context(a2d):
    """Negative control: blocks of size 4 condition block 2 on block 1's clean tokens, so the
    estimate of a 5-token completion must differ from MDLM's all-masked estimate."""
    model, tok = a2d
    _, _, ids, mask = _batch(tok.pad_token_id)
    seeds = torch.tensor([1, 2])
    bd3 = logprobs.bd3lm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds, BS)
    mdlm = logprobs.mdlm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds)
    assert (bd3[0, 4:] - mdlm[0, 4:]).abs().max() > 1e-6


def test_cfg_guides_the_estimate(a2d):
    model, tok = a2d
    _, _, ids, mask = _batch(tok.pad_token_id)
    seeds = torch.tensor([1, 2])
    plain = logprobs.mdlm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds)
    guided = logprobs.mdlm_completion_logits(model, ids, mask, 5, tok.mask_token_id, seeds,
                                             cfg_scale=1.0)  # fmt: skip
    assert guided.shape == plain.shape and (guided - plain).abs().max() > 1e-6
