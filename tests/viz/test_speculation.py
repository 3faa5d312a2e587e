"""The trace of ``speculative_decode`` (one ``VerifierStep`` per verifying forward) adds up to the
output and changes nothing; ``SpeculationViewer`` colours accepted drafts, rejected drafts and the
verifier's own token apart, frame by frame (float64 tiny models)."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert, viz
from a2dkit.samplers import BD3LMSampler, Draft, SpeculativeStats, VerifierStep
from a2dkit.samplers.drafters import sampler_drafter
from a2dkit.samplers.speculative import speculative_decode

PROMPT, N, K = [8, 99, 23, 61, 7, 30], 12, 4


@pytest.fixture(scope="module")
def pair(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok).double().eval()
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    out = source.generate(torch.tensor([PROMPT]), max_new_tokens=N, do_sample=False,
                          pad_token_id=0)  # fmt: skip
    return source, a2d.double().eval(), tok, out[0, len(PROMPT) :].tolist()


def _half_right(greedy: list[int]):
    """A drafter whose drafts match the verifier's greedy tokens but for the last one."""

    def draft(prefix: list[int], k: int) -> Draft:
        start = len(prefix) - len(PROMPT)
        tokens = greedy[start : start + k]
        return Draft(tokens[:-1] + [(tokens[-1] + 1) % 250] if tokens else [])

    return draft


def test_the_trace_adds_up_to_the_output_and_changes_nothing(pair):
    source, a2d, tok, greedy = pair
    stats, traced = SpeculativeStats(), SpeculativeStats()
    plain = speculative_decode(source, sampler_drafter(BD3LMSampler(a2d, tok), stats), PROMPT,
                               N, K, stats=stats)  # fmt: skip
    trace: list[VerifierStep] = []
    drafter = sampler_drafter(BD3LMSampler(a2d, tok), traced)
    out = speculative_decode(source, drafter, PROMPT, N, K, stats=traced, trace=trace)
    assert out == plain == greedy
    assert len(trace) == sum(traced.accepted.values()) == traced.verifier_forwards - 1
    assert [t for s in trace for t in s.committed] == out
    assert sum(s.accepted for s in trace) + len(trace) == len(out)  # no EOS: accepted + 1 each
    assert [s.start for s in trace] == [sum(len(t.committed) for t in trace[:i])
                                        for i in range(len(trace))]  # fmt: skip
    assert sum(s.drafter_forwards for s in trace) == traced.drafter_forwards
    for s in trace:
        assert s.committed == [*s.draft[: s.accepted], s.token]
        assert s.accepted == len(s.draft) or s.draft[s.accepted] != s.token


def _spans(html: str, kind: str) -> int:
    return len(re.findall(f'class="a2d-{kind}"', html))


def test_the_viewer_colours_accepted_rejected_and_the_verifiers_token(pair):
    source, _, tok, greedy = pair
    trace: list[VerifierStep] = []
    out = speculative_decode(source, _half_right(greedy), PROMPT, N, K, trace=trace)
    assert out == greedy and all(s.accepted == len(s.draft) - 1 for s in trace if s.draft)
    viewer = viz.SpeculationViewer(trace, tok, prompt=PROMPT, title="BD3LM drafts")
    assert viewer.num_steps == len(trace) + 1
    first, last = viewer.render(0), viewer.render(len(trace))
    assert first != last and _spans(first, "prompt") == len(PROMPT)
    assert _spans(first, "accepted") == _spans(first, "rejected") == 0
    for i, step in enumerate(trace, start=1):
        frame = viewer.render(i)
        accepted = sum(s.accepted for s in trace[:i])
        assert _spans(frame, "accepted") == accepted and _spans(frame, "verifier") == i
        assert _spans(frame, "rejected") == len(step.draft) - step.accepted
        assert f"verifier forward {i}/{len(trace)}" in frame
    colours = viz.SPECULATION_COLORS
    assert colours["accepted"][0] != colours["rejected"][0] != colours["verifier"][0]
    second = viewer.render(2)
    for kind in ("accepted", "rejected", "verifier"):  # the shown forward in its strong colour
        assert re.search(f'class="a2d-{kind}"[^>]*background:{colours[kind][0]}', second)
    for kind in ("accepted", "verifier"):  # the earlier forward's tokens in the lighter one
        assert re.search(f'class="a2d-{kind}"[^>]*background:{colours[kind][1]}', second)
    assert "line-through" in second and "<b>BD3LM drafts</b>" in second
    page = viewer.to_html()  # the static player: the same frames, no kernel
    assert 'class="a2d-player"' in page and "a2d-rejected" in page
    viewer.slider.value = 2  # the live widget follows the slider
    assert viewer.html.value == viewer.render(2)


def test_bad_input_is_refused(pair):
    _, _, tok, _ = pair
    with pytest.raises(ValueError, match="trace is empty; pass trace=\\[\\] to speculative_dec"):
        viz.SpeculationViewer([], tok)
    viewer = viz.SpeculationViewer([VerifierStep(0, [5], 1, 6, [5, 6])], tok)
    with pytest.raises(ValueError, match=r"step=2 out of range; valid steps 0\.\.1"):
        viewer.render(2)
