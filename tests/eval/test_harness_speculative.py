"""``speculative=source|self`` in the lm-eval models' ``--model_args``: ``generate_until`` is the
AR verifier's greedy ``generate`` (float64 tiny models), likelihoods are unchanged, and options
speculative decoding cannot honour are refused by name before any weights load."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import make_tiny_ar
from lm_eval.api.instance import Instance

from a2dkit import convert
from a2dkit.eval import harness as lem
from a2dkit.models import causal_mode

ARGS = "max_new_tokens=12,steps=12,mc_num=2,mc_batch_size=2,seed=3,device=cpu"
PROMPTS = ["<|im_start|>user\nCopy: red blue<|im_end|>\n<|im_start|>assistant\n", "ROMEO: But"]
HARNESS = {"mdlm": lem.MDLMEvalHarness, "bd3lm": lem.BD3LMEvalHarness}


@pytest.fixture(scope="module")
def dirs(small_tokenizer, tmp_path_factory):
    """A float64 source AR checkpoint, its conversion with a manifest naming it, and the same
    conversion without one (dtype=auto loads them in float64)."""
    root = tmp_path_factory.mktemp("spec_eval")
    tok = copy.deepcopy(small_tokenizer)
    ar = make_tiny_ar("qwen3", tok, seed=5).double().eval()
    ar.save_pretrained(root / "ar")
    tok.save_pretrained(root / "ar")
    a2d, a2d_tok, _ = convert.to_diffusion(copy.deepcopy(ar), tok)
    for name in ("a2d", "bare"):
        a2d.save_pretrained(root / name)
        a2d_tok.save_pretrained(root / name)
    manifest = convert.manifest_dict(source={"name_or_path": str(root / "ar")})
    (root / "a2d" / "a2d_manifest.json").write_text(json.dumps(manifest))
    return {k: str(root / k) for k in ("ar", "a2d", "bare")} | {"ar_model": ar}


def _generate(lm, **gen_kwargs) -> list[str]:
    reqs = [Instance("generate_until", {}, (p, gen_kwargs), i) for i, p in enumerate(PROMPTS)]
    return lm.generate_until(reqs)


def _greedy(lm, model, n: int = 12, until=()) -> list[str]:
    """The verifier's own greedy ``generate`` of every prompt, cut as the harness cuts."""
    texts = []
    for prompt in PROMPTS:
        ids = lm.tok_encode(prompt)
        eos = lm.tokenizer.eos_token_id
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos)  # fmt: skip
        texts.append(lm._postprocess(out[0, len(ids) :].tolist(), list(until)))
    return texts


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_source_generate_until_is_the_verifiers_greedy_output(dirs, algo):
    lm = HARNESS[algo].create_from_arg_string(
        f"pretrained={dirs['a2d']},{ARGS},speculative=source,draft_length=3"
    )  # the verifier: the source the manifest records
    assert lm.model.dtype == torch.float64 and lm.speculative.verifier.dtype == torch.float64
    got = _generate(lm, until=[])
    assert got == _greedy(lm, dirs["ar_model"]) and all(got)
    assert _generate(lm, until=["e"], max_gen_toks=5) == _greedy(lm, dirs["ar_model"], 5, ["e"])
    stats = lm.speculative.stats
    assert stats.tokens > 0 and stats.drafter_forwards > 0
    assert sum(stats.accepted.values()) == stats.verifier_forwards - 2 * len(PROMPTS)


@pytest.mark.parametrize("mode", ["self", "one-pass", "one-pass,draft_candidates=4"])
def test_self_generate_until_is_the_models_own_causal_greedy_output(dirs, mode):
    args = f"pretrained={dirs['bare']},{ARGS},speculative={mode},draft_length=4,block_size=4"
    lm = lem.BD3LMEvalHarness.create_from_arg_string(args)
    with causal_mode(lm.model):
        want = _greedy(lm, lm.model)
    assert _generate(lm, until=[]) == want


def test_likelihoods_are_unaffected(dirs):
    reqs = [("First Citizen: speak ", "hear me"), ("ROMEO: But", ", soft! what light")]
    reqs = [Instance("loglikelihood", {}, r, i) for i, r in enumerate(reqs)]
    plain = lem.MDLMEvalHarness.create_from_arg_string(f"pretrained={dirs['a2d']},{ARGS}")
    spec = lem.MDLMEvalHarness.create_from_arg_string(
        f"pretrained={dirs['bare']},{ARGS},speculative=source,verifier_path={dirs['ar']}"
    )
    assert spec.loglikelihood(reqs) == plain.loglikelihood(reqs)


BAD = [
    ("speculative=oracle", r"speculative='oracle' is not valid; choose one of \('source', 'se"),
    ("speculative=source,temperature=0.7", r"temperature=0\.7 is not valid; use temperature=0"),
    ("speculative=self,cfg_scale=1", r"cfg_scale=1\.0 is not valid; use cfg_scale=0\.0"),
    ("speculative=source,draft_length=0", r"draft_length=0 must lie in 1\.\.max_new_tokens=12"),
    ("speculative=self,draft_length=13", r"draft_length=13 must lie in 1\.\.max_new_tokens=12"),
    ("speculative=self,remasking=random", r"cannot honour remasking='random'"),
    ("verifier_path=x", r"verifier_path='x' needs speculative=source"),
    ("speculative=self,verifier_path=x", r"verifier_path='x' is for speculative=source"),
    ("speculative=one-pass,temperature=0.5", r"is greedy and unguided: temperature=0.5"),
    ("speculative=self,draft_candidates=4", r"draft_candidates=4 must be 1, or > 1 with specul"),
    ("speculative=one-pass,draft_candidates=0", r"draft_candidates=0 must be 1, or > 1 with sp"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_speculative_model_args_are_refused_before_loading(extra, message):
    with pytest.raises(ValueError, match=message):  # the path would fail only once loading
        lem.MDLMEvalHarness.create_from_arg_string(f"pretrained=/nonexistent,{ARGS},{extra}")
    with pytest.raises(ValueError, match=message):  # the pre-flight check too
        lem.check_model_args("a2d_bd3lm", f"pretrained=x,{ARGS},{extra}")


def test_a_missing_source_or_an_a2d_verifier_is_named(dirs):
    with pytest.raises(ValueError, match=r"records no source \(no a2d_manifest.json\): pass ver"):
        lem.MDLMEvalHarness.create_from_arg_string(f"pretrained={dirs['bare']},speculative=source")
    args = f"pretrained={dirs['bare']},speculative=source,verifier_path={dirs['a2d']}"
    with pytest.raises(ValueError, match="is an A2D model; for its AR mode use speculative=self"):
        lem.MDLMEvalHarness.create_from_arg_string(args)
