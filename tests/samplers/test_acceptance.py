"""Speculative sampling is exact: the first two output tokens (three for one-pass, which drafts
in the verifying forward) are distributed as the verifier's own samples (chi-square on many
draws, with a margin no fixed-seed run reaches by chance), and a wrong acceptance rule is caught
by the same test (negative controls)."""

import copy
import math
from collections import Counter

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.models import causal_mode
from a2dkit.samplers import MDLMSampler, acceptance, one_pass, speculative
from a2dkit.samplers.acceptance import greedy_accept, speculative_accept
from a2dkit.samplers.drafters import proposal_drafter
from a2dkit.samplers.one_pass import one_pass_self_decode
from a2dkit.samplers.speculative import (
    SpeculativeStats,
    speculative_decode,
    speculative_decode_batch,
)

V, TEMPERATURE = 6, 0.7


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny forwards: threads only contend
    yield
    torch.set_num_threads(threads)


def chi_square(counts: Counter, expected: dict, n: int) -> tuple[float, float]:
    """(statistic, bound): bins of expected count >= 10 plus one for the rest; the bound lies
    8 standard deviations above the mean (df), far beyond any chance fluctuation."""
    big = {b: pr for b, pr in expected.items() if n * pr >= 10}
    rest = 1 - sum(big.values())
    stat = sum((counts[b] - n * pr) ** 2 / (n * pr) for b, pr in big.items())
    rest_count = n - sum(counts[b] for b in big)
    if n * rest > 1e-9:
        stat += (rest_count - n * rest) ** 2 / (n * rest)
    elif rest_count:
        return math.inf, 0.0  # mass where the verifier has none
    df = len(big) - (n * rest <= 1e-9)
    return stat, df + 8 * math.sqrt(2 * df)


def _tables():
    """Drafter q1, q2[x1] and verifier p1, p2[x1], p3 (a distribution after two tokens)."""
    torch.manual_seed(0)
    dirichlet = torch.distributions.Dirichlet(torch.full((V,), 0.7, dtype=torch.float64))
    return tuple(dirichlet.sample(shape) for shape in ((), (V,), (), (V,), ()))


def _two_tokens(tables, n: int, gen) -> Counter:
    """n draws of the first two tokens of speculative sampling with the synthetic tables."""
    q1, q2, p1, p2, p3 = tables
    counts = Counter()
    for _ in range(n):
        x1 = int(torch.multinomial(q1, 1, generator=gen))
        x2 = int(torch.multinomial(q2[x1], 1, generator=gen))
        logits = torch.stack([p1, p2[x1], p3]).log() * TEMPERATURE  # p = softmax(logits / T)
        k, token = speculative_accept([x1, x2], torch.stack([q1, q2[x1]]), logits, TEMPERATURE,
                                      gen)  # fmt: skip
        out = [x1, x2, token][:k] + [token]
        if len(out) == 1:  # rejected at once: the next round draws from the verifier
            out.append(int(torch.multinomial(p2[out[0]], 1, generator=gen)))
        counts[tuple(out[:2])] += 1
    return counts


def _exact_pairs(p1, p2) -> dict:
    return {(a, b): float(p1[a] * p2[a, b]) for a in range(V) for b in range(V)}


def test_the_rule_reproduces_the_verifiers_joint_distribution():
    gen, tables = torch.Generator().manual_seed(0), _tables()
    stat, bound = chi_square(_two_tokens(tables, 8000, gen), _exact_pairs(*tables[2:4]), 8000)
    assert stat < bound, (stat, bound)


def test_resampling_from_p_instead_of_the_residual_is_caught(monkeypatch):
    gen, tables = torch.Generator().manual_seed(0), _tables()
    monkeypatch.setattr(acceptance, "residual_distribution", lambda p, q: p)  # forgets "- q"
    stat, bound = chi_square(_two_tokens(tables, 8000, gen), _exact_pairs(*tables[2:4]), 8000)
    assert stat > 3 * bound, (stat, bound)


def test_greedy_accept_takes_the_matching_prefix_and_the_verifiers_token():
    logits = torch.eye(5)[[1, 2, 4, 0]]  # argmax 1, 2, 4, 0
    assert greedy_accept([1, 2, 3], logits) == (2, 4)
    assert greedy_accept([1, 2, 4], logits) == (3, 0)
    assert greedy_accept([], logits[:1]) == (0, 1)


def test_speculative_accept_refuses_bad_input():
    with pytest.raises(ValueError, match="temperature=0"):
        speculative_accept([1], torch.ones(1, 3) / 3, torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError, match="2 drafts need q of k rows"):
        speculative_accept([1, 2], torch.ones(1, 3) / 3, torch.zeros(3, 3), 1.0)


# --- the whole loop on tiny models: a diffusion drafter, the source AR model verifying ----------


@pytest.fixture(scope="module")
def peaked(small_tokenizer):
    """Source and converted drafter (float64) with sharpened logits: few likely tokens."""
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok).double().eval()
    with torch.no_grad():
        source.model.norm.weight.mul_(12)  # logits x 12: a handful of tokens hold the mass
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    return source, a2d.double().eval(), tok


def _verifier_pairs(source, prompt, top: int = 12) -> dict:
    """p(x1) p(x2 | x1) for the ``top`` likeliest x1 (the rest falls in the chi-square's rest)."""
    with torch.no_grad():
        p1 = torch.softmax(source(torch.tensor([prompt])).logits[0, -1] / TEMPERATURE, -1)
        firsts = p1.topk(top).indices.tolist()
        rows = torch.tensor([[*prompt, a] for a in firsts])
        p2 = torch.softmax(source(rows).logits[:, -1] / TEMPERATURE, -1)  # (top, V)
    return {(a, b): float(p1[a] * p2[i, b]) for i, a in enumerate(firsts)
            for b in range(p2.shape[-1])}  # fmt: skip


def _pipeline_pairs(source, drafter, prompt, n: int) -> Counter:
    torch.manual_seed(0)
    counts = Counter()
    for _ in range(n):
        out = speculative_decode(source, drafter, prompt, 3, 2, temperature=TEMPERATURE)
        counts[tuple(out[:2])] += 1
    return counts


def test_sampled_output_is_distributed_as_the_verifiers(peaked, monkeypatch):
    source, a2d, tok = peaked
    prompt, n = [5, 17, 42], 1000
    drafter = proposal_drafter(MDLMSampler(a2d, tok), TEMPERATURE)  # 2 steps: left to right
    exact = _verifier_pairs(source, prompt)
    stat, bound = chi_square(_pipeline_pairs(source, drafter, prompt, n), exact, n)
    assert stat < bound, (stat, bound)
    # negative control: accepting every draft gives the drafter's distribution, and is caught
    always = lambda d, q, logits, t, g=None: (len(d), int(logits[-1].argmax()))  # noqa: E731
    monkeypatch.setattr(speculative, "speculative_accept", always)
    stat, bound = chi_square(_pipeline_pairs(source, drafter, prompt, 300), exact, 300)
    assert stat > 3 * bound, (stat, bound)


def test_a_batch_of_draws_is_distributed_as_the_verifiers(peaked):
    """The same prompt n times in one padded batch (beside a longer row): n independent draws of
    the verifier's two-token joint; the drafter's own joint (every draft kept) is the control."""
    source, a2d, tok = peaked
    prompt, n = [5, 17, 42], 600
    exact = _verifier_pairs(source, prompt)
    drafter = proposal_drafter(MDLMSampler(a2d, tok), TEMPERATURE)
    torch.manual_seed(0)
    rows = speculative_decode_batch(source, drafter, [[8, 99, 23, 61], *[prompt] * n], 3, 2,
                                    temperature=TEMPERATURE)[1:]  # fmt: skip
    stat, bound = chi_square(Counter(tuple(r[:2]) for r in rows), exact, n)
    assert stat < bound, (stat, bound)
    drafts = drafter.batch([prompt] * n, 2)
    stat, bound = chi_square(Counter(tuple(d.tokens) for d in drafts), exact, n)
    assert stat > 3 * bound, (stat, bound)


# --- one-pass at a temperature: the same forward verifies and drafts, the output still p's -------


def _verifier_triples(model, prompt, top: int = 6) -> dict:
    """p(x1) p(x2 | x1) p(x3 | x1, x2) of the model's AR mode for its ``top`` likeliest x1 and,
    after each, x2 (the rest falls in the chi-square's rest)."""
    with torch.no_grad(), causal_mode(model):
        p = lambda rows: torch.softmax(model(torch.tensor(rows)).logits[:, -1] / TEMPERATURE, -1)  # noqa: E731
        p1 = p([prompt])[0]
        firsts = p1.topk(top).indices.tolist()
        p2 = p([[*prompt, a] for a in firsts])  # (top, V)
        pairs = [(a, b) for i, a in enumerate(firsts) for b in p2[i].topk(top).indices.tolist()]
        p3 = p([[*prompt, a, b] for a, b in pairs])  # (top * top, V)
    return {(a, b, c): float(p1[a] * p2[firsts.index(a), b] * p3[j, c])
            for j, (a, b) in enumerate(pairs) for c in range(p3.shape[-1])}  # fmt: skip


def _one_pass_triples(model, mask_id, prompt, n: int) -> Counter:
    gen, counts = torch.Generator().manual_seed(0), Counter()
    for _ in range(n):
        out = one_pass_self_decode(model, prompt, 3, 2, mask_id, temperature=TEMPERATURE,
                                   generator=gen)  # fmt: skip
        counts[tuple(out)] += 1
    return counts


def test_one_pass_sampled_output_is_distributed_as_the_models_ar_samples(peaked, monkeypatch):
    """Three tokens: the first from the opening forward, the next two through a pre-drafted draft
    of 2 accepted or resampled; their joint is the model's AR-mode joint (a fresh conversion:
    its source's), and accepting every draft (the blocks' own joint) is caught."""
    _, a2d, tok = peaked
    prompt, n = [5, 17, 42], 1500
    exact = _verifier_triples(a2d, prompt)
    stats = SpeculativeStats()
    counts = _one_pass_triples(a2d, tok.mask_token_id, prompt, n)
    stat, bound = chi_square(counts, exact, n)
    assert stat < bound, (stat, bound)
    gen = torch.Generator().manual_seed(1)  # some drafts are accepted, some resampled
    for _ in range(50):
        one_pass_self_decode(a2d, prompt, 3, 2, tok.mask_token_id, temperature=TEMPERATURE,
                             generator=gen, stats=stats)  # fmt: skip
    assert stats.accepted[0] and sum(v for k, v in stats.accepted.items() if k), stats.accepted
    always = lambda d, q, logits, t, g=None: (len(d), int(logits[-1].argmax()))  # noqa: E731
    monkeypatch.setattr(one_pass, "speculative_accept", always)
    stat, bound = chi_square(_one_pass_triples(a2d, tok.mask_token_id, prompt, n), exact, n)
    assert stat > 3 * bound, (stat, bound)


def test_one_pass_refuses_a_bad_temperature(peaked):
    _, a2d, tok = peaked
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"temperature={bad} must be a finite number >= 0"):
            one_pass_self_decode(a2d, [5, 17], 3, 2, tok.mask_token_id, temperature=bad)


def test_greedy_tree_accept_follows_the_verifiers_choice_through_siblings():
    from a2dkit.samplers.acceptance import greedy_tree_accept

    tokens, parents = [7, 1, 2, 3, 4], [-1, 0, 1, 0, 3]  # chain 7-1-2, sibling 3 of 1, then 4
    logits = torch.full((5, 10), -1.0)
    logits[0, 3] = logits[3, 4] = logits[4, 9] = logits[1, 2] = 1.0  # 7 -> 3 -> 4, then 9
    assert greedy_tree_accept(tokens, parents, logits) == ([0, 3, 4], 9)
    logits[0, 3], logits[0, 1] = -1.0, 1.0  # now the chain: 7 -> 1 -> 2, then row 2's argmax 0
    assert greedy_tree_accept(tokens, parents, logits) == ([0, 1, 2], 0)
    logits[0, 1], logits[0, 5] = -1.0, 1.0  # no child matches: nothing accepted
    assert greedy_tree_accept(tokens, parents, logits) == ([0], 5)
