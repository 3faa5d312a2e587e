"""``sample`` / ``chat --speculative source|self``: the completions are the verifier's greedy
ones (subprocesses, float64 tiny models), ``--json`` holds them and the statistics, and bad input
is one line, exit 2, before any weights load where no weights are needed to tell."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import TEXT, make_tiny_ar

from a2dkit import convert
from a2dkit.cli import chat, sample
from a2dkit.models import causal_mode
from a2dkit.tutorial import tiny, tiny_tokenizer

MISSING = "/no/such/a2d-model"
FLAGS = ["--max_new_tokens", "8", "--steps", "8", "--block_size", "4", "--dtype", "float64"]


@pytest.fixture(scope="module")
def dirs(small_tokenizer, tmp_path_factory):
    """A source AR checkpoint, its conversion with a manifest naming it, and the same conversion
    without one; float64 models in memory to compute the expected outputs."""
    root = tmp_path_factory.mktemp("spec")
    tok = copy.deepcopy(small_tokenizer)
    ar = make_tiny_ar("qwen3", tok, seed=5)
    ar.save_pretrained(root / "ar")
    tok.save_pretrained(root / "ar")
    a2d, a2d_tok, _ = convert.to_diffusion(copy.deepcopy(ar), tok)
    for name in ("a2d", "bare"):
        a2d.save_pretrained(root / name)
        a2d_tok.save_pretrained(root / name)
    manifest = convert.manifest_dict(source={"name_or_path": str(root / "ar")})
    (root / "a2d" / "a2d_manifest.json").write_text(json.dumps(manifest))
    models = {"ar": ar.double().eval(), "a2d": a2d.double().eval()}
    return {k: str(root / k) for k in ("ar", "a2d", "bare")} | {"root": root, "tok": a2d_tok,
                                                                "models": models}  # fmt: skip


def _greedy(model, tok, prompt: str, n: int = 8) -> tuple[str, int]:
    """The model's greedy completion text (``generate``) and its token count, EOS included."""
    ids = sample.encode(tok, prompt, chat_template=False)
    out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)  # fmt: skip
    gen = out[0, len(ids) :].tolist()
    text = tok.decode([t for t in gen if t != tok.eos_token_id], skip_special_tokens=True)
    return text, len(gen)


def _run(*argv: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "a2dkit.cli.sample", *argv]
    env = {**os.environ, "A2DKIT_DEBUG": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "mode, algo", [("source", "bd3lm"), ("self", "mdlm"), ("one-pass", "bd3lm"),
                   ("one-pass tree", "bd3lm")]
)  # fmt: skip
def test_sample_speculative_writes_the_verifiers_greedy_output(dirs, tmp_path, mode, algo):
    out = tmp_path / "out.json"
    tree = ["--draft_candidates", "4"] if mode.endswith("tree") else []
    mode = mode.split()[0]
    proc = _run("--model_name_or_path", dirs["a2d"], "--algo", algo, "--speculative", mode,
                "--draft_length", "3", "--prompts", "ROMEO: But||First Citizen:",
                "--json", str(out), *tree, *FLAGS)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    verifier = dirs["models"]["ar" if mode == "source" else "a2d"]
    with causal_mode(dirs["models"]["a2d"]):  # self: the A2D model's AR mode
        want = [_greedy(verifier, dirs["tok"], p) for p in ("ROMEO: But", "First Citizen:")]
    assert [s["completion"] for s in result["samples"]] == [text for text, _ in want]
    stats = result["statistics"]
    assert stats["tokens"] == sum(n for _, n in want)
    assert stats["verifier_forwards"] >= 2
    assert (stats["drafter_forwards"] > 0) == (mode != "one-pass")  # one-pass: no drafter forward
    assert sum(stats["acceptance_histogram"].values()) == stats["verifier_forwards"] - 2
    assert stats["tokens_per_second"] > 0 and "forwards per token" in proc.stdout


def test_the_verifier_defaults_to_the_manifests_source_and_a_bare_model_needs_one(dirs):
    with pytest.raises(ValueError, match=r"records no source \(no a2d_manifest.json\): pass "):
        sample.main(["--model_name_or_path", dirs["bare"], "--speculative", "source", *FLAGS])
    argv = ["--model_name_or_path", dirs["bare"], "--speculative", "source", "--verifier_path",
            dirs["ar"], "--prompts", "ROMEO:", *FLAGS]  # fmt: skip
    assert sample.main(argv) == 0


def test_one_pass_samples_at_a_temperature(dirs, tmp_path):
    """Sampled one-pass runs from the CLI (its distribution: tests/samplers/test_acceptance.py);
    two seeds give different completions, the same seed the same."""
    runs = []
    for seed in (0, 0, 1):
        out = tmp_path / f"out{len(runs)}.json"
        argv = ["--model_name_or_path", dirs["a2d"], "--algo", "bd3lm", "--speculative",
                "one-pass", "--draft_length", "2", "--temperature", "5.0", "--seed", str(seed),
                "--prompts", "ROMEO: But", "--json", str(out), *FLAGS]  # fmt: skip
        assert sample.main(argv) == 0
        runs.append(json.loads(out.read_text()))
    assert runs[0]["samples"] == runs[1]["samples"] != runs[2]["samples"]
    assert runs[0]["statistics"]["drafter_forwards"] == 0 and runs[0]["statistics"]["tokens"] > 0


BAD = [
    (["--speculative", "oracle"], r"speculative='oracle' is not valid; choose one of \('source'"),
    (["--speculative", "source", "--draft_length", "0"], r"draft_length=0 must lie in 1\.\.max_"),
    (["--speculative", "self", "--draft_length", "9"], r"draft_length=9 must lie in 1\.\.max_new"),
    (["--speculative", "source", "--cfg_scale", "0.5"], r"cannot honour cfg_scale=0\.5"),
    (["--speculative", "self", "--remasking", "random"], r"cannot honour remasking='random'"),
    (["--speculative", "self", "--temperature", "1", "--threshold", "0.9"], r"threshold=0\.9 can"),
    (["--verifier_path", "x"], r"--verifier_path needs --speculative source"),
    (["--speculative", "one-pass", "--threshold", "0.9"], r"one-pass drafts a whole block in"),
    (["--speculative", "one-pass", "--verifier_path", "x"], r"--verifier_path is for --specul"),
    (["--speculative", "self", "--verifier_path", "x"], r"--verifier_path is for --speculative s"),
    (["--speculative", "one-pass", "--draft_candidates", "0"], r"draft_candidates=0 must be an i"),
    (["--speculative", "self", "--draft_candidates", "4"],
     r"draft_candidates=4 verifies a draft tree greedily: it needs --speculative one-pass"),
    (["--speculative", "one-pass", "--draft_candidates", "4", "--temperature", "0.7"],
     r"draft_candidates=4 .* --temperature 0 \(got speculative='one-pass', temperature=0.7\)"),
]


@pytest.mark.parametrize("flags, message", BAD)
def test_bad_speculative_flags_fail_before_the_model_loads(flags, message):
    with pytest.raises(ValueError, match=message):  # MISSING would fail only once loading starts
        sample.main(["--model_name_or_path", MISSING, *FLAGS, *flags])


def test_self_without_a_causal_path_fails_before_the_weights_load(tmp_path):
    tiny.tiny_config("mistral", 320, sliding_window=4).save_pretrained(tmp_path)  # no weights
    with pytest.raises(ValueError, match=r"--speculative self: model_type='mistral' has no causal"):
        sample.main(["--model_name_or_path", str(tmp_path), "--speculative", "self", *FLAGS])


def test_a_verifier_with_another_tokenizer_is_one_line_exit_2(dirs):
    other = dirs["root"] / "other"
    tok = tiny_tokenizer.train_tokenizer(TEXT[:2], vocab_size=280)
    make_tiny_ar("qwen3", tok).save_pretrained(other)
    tok.save_pretrained(other)
    proc = _run("--model_name_or_path", dirs["a2d"], "--speculative", "source",
                "--verifier_path", str(other), *FLAGS)  # fmt: skip
    last = proc.stderr.strip().splitlines()[-1]  # after the weights' progress bars
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("error:") == 1
    assert last.startswith(f"error: verifier '{other}' has another tokenizer than the drafter")


def test_a_missing_or_a2d_verifier_is_named_before_the_drafter_loads(dirs):
    argv = ["--model_name_or_path", MISSING, "--speculative", "source", *FLAGS]
    with pytest.raises(ValueError, match=f"model path '{MISSING}' not found"):
        sample.main([*argv, "--verifier_path", MISSING])
    with pytest.raises(ValueError, match=f"model path '{MISSING}' not found"):
        sample.main(argv)  # the drafter's manifest is read first
    argv[1] = dirs["bare"]
    with pytest.raises(ValueError, match="is an A2D model; for its AR mode use --speculative self"):
        sample.main([*argv, "--verifier_path", dirs["a2d"]])


def test_chat_replies_with_the_verifiers_greedy_text(dirs, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("ROMEO: But\n"))
    argv = ["--model_name_or_path", dirs["a2d"], "--speculative", "source", *FLAGS]
    assert chat.main(argv) == 0
    printed = capsys.readouterr().out
    want = _greedy(dirs["models"]["ar"], dirs["tok"], "ROMEO: But\n")[0].strip()
    want = "".join(c for c in want if c.isprintable())  # rich drops control characters
    assert f"assistant> {want}" in printed and "accepted per verifier forward" in printed
