"""lm-eval models a2d_mdlm / a2d_bd3lm end to end on a tiny converted Qwen3 and the local task."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import lm_eval
import pytest
import torch
from conftest import make_tiny_ar
from lm_eval.api.instance import Instance

from a2dkit import convert
from a2dkit import eval as a2d_eval
from a2dkit.cli import eval_check
from a2dkit.cli.errors import run_cli
from a2dkit.data.synthetic import make_synthetic_dataset
from a2dkit.eval import harness as lem
from a2dkit.eval import tasks as eval_tasks

ARGS = "max_new_tokens=16,steps=16,mc_num=4,mc_batch_size=2,seed=3,device=cpu"
BLOCK = {"mdlm": None, "bd3lm": 4}


@pytest.fixture(scope="module")
def model_dir(small_tokenizer, tmp_path_factory):
    """A tiny converted Qwen3 (random weights) with the ChatML tokenizer, saved to disk."""
    import copy

    tok = copy.deepcopy(small_tokenizer)
    a2d, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    path = tmp_path_factory.mktemp("a2d")
    a2d.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tasks():
    return eval_tasks.task_manager(include_defaults=False)


def _model_args(model_dir, algo: str) -> str:
    block = f",block_size={BLOCK[algo]}" if BLOCK[algo] else ""
    return f"pretrained={model_dir},{ARGS}{block}"


def _expected_elbo(lm, context: str, continuation: str) -> float:
    """a2dkit.eval's ELBO of one request, encoded here (context spaces move to the continuation)."""
    tok = lm.tokenizer
    stripped = context.rstrip()
    ctx = tok(stripped)["input_ids"]
    whole = tok(stripped + context[len(stripped) :] + continuation)["input_ids"]
    gen = torch.Generator().manual_seed(3)
    kw = dict(prompt_len=len(ctx), mc_num=4, batch_size=2, generator=gen)
    if lm.algo == "bd3lm":
        return float(a2d_eval.bd3lm_elbo(lm.model, torch.tensor(whole), block_size=4, **kw).mean)
    return float(a2d_eval.mdlm_elbo(lm.model, torch.tensor(whole), **kw).mean)


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_simple_evaluate_local_task_end_to_end(model_dir, tasks, algo):
    res = lm_eval.simple_evaluate(
        model=f"a2d_{algo}", model_args=_model_args(model_dir, algo), limit=4, task_manager=tasks,
        tasks=["a2dkit_synthetic", "a2dkit_synthetic_mc"], apply_chat_template=True,
    )  # fmt: skip
    gen, mc = res["samples"]["a2dkit_synthetic"], res["samples"]["a2dkit_synthetic_mc"]
    assert len(gen) == len(mc) == 4
    assert gen[0]["arguments"][0][0].startswith("<|im_start|>user\n")  # chat template applied
    hits = [s["filtered_resps"][0] == s["target"] for s in gen]  # recomputed from the samples
    em = res["results"]["a2dkit_synthetic"]["exact_match,strip"]
    assert 0.0 <= em <= 1.0 and em == pytest.approx(sum(hits) / 4)
    best = [max(range(4), key=lambda i, s=s: float(s["filtered_resps"][i][0])) for s in mc]
    acc = res["results"]["a2dkit_synthetic_mc"]["acc,none"]
    assert acc == pytest.approx(sum(b == s["target"] for b, s in zip(best, mc, strict=True)) / 4)
    lm = lem.BD3LMEvalHarness if algo == "bd3lm" else lem.MDLMEvalHarness
    lm = lm.create_from_arg_string(_model_args(model_dir, algo))
    context, continuation = mc[0]["arguments"][1]
    assert float(mc[0]["resps"][1][0][0]) == pytest.approx(
        _expected_elbo(lm, context, continuation), rel=1e-5
    )  # every response is the Monte-Carlo ELBO of a2dkit.eval


@pytest.mark.parametrize("algo", ["mdlm", "bd3lm"])
def test_loglikelihood_is_the_elbo_with_lm_evals_token_split(model_dir, algo):
    cls = lem.BD3LMEvalHarness if algo == "bd3lm" else lem.MDLMEvalHarness
    lm = cls.create_from_arg_string(_model_args(model_dir, algo))
    reqs = [("First Citizen: speak ", "hear me"), ("ROMEO: But", ", soft! what light")]
    out = lm.loglikelihood([Instance("loglikelihood", {}, r, i) for i, r in enumerate(reqs)])
    for (ll, greedy), (ctx, cont) in zip(out, reqs, strict=True):
        assert ll == pytest.approx(_expected_elbo(lm, ctx, cont), rel=1e-6) and ll < 0
        assert greedy is False


def test_loglikelihood_rolling_is_the_elbo_after_eos(model_dir):
    lm = lem.MDLMEvalHarness.create_from_arg_string(_model_args(model_dir, "mdlm"))
    text = "All: Speak, speak. You are all resolved rather to die than to famish?"
    (got,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    ids = [lm.tokenizer.eos_token_id, *lm.tokenizer(text)["input_ids"]]
    want = a2d_eval.mdlm_elbo(
        lm.model, torch.tensor(ids), prompt_len=1, mc_num=4, batch_size=2,
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    assert got == pytest.approx(float(want.mean), rel=1e-6)


def test_generate_until_cuts_at_stop_strings_and_caps_max_gen_toks(model_dir):
    lm = lem.BD3LMEvalHarness.create_from_arg_string(_model_args(model_dir, "bd3lm"))
    prompts = ["<|im_start|>user\nCopy: red blue<|im_end|>\n<|im_start|>assistant\n", "ROMEO:"]

    def generate(**gen_kwargs):
        reqs = [Instance("generate_until", {}, (p, gen_kwargs), i) for i, p in enumerate(prompts)]
        return lm.generate_until(reqs)

    full = generate(until=[])
    assert all(len(t) >= 4 for t in full), full
    stops = [t[len(t) // 2 : len(t) // 2 + 2] for t in full]  # a substring of each output
    for text, stop in zip(full, stops, strict=True):
        (cut,) = lm.generate_until([Instance("generate_until", {}, (prompts[full.index(text)],
                                    {"until": [stop]}), 0)])  # fmt: skip
        assert cut == text.split(stop, 1)[0] and len(cut) < len(text)
    # BD3LM denoises block by block: max_gen_toks=4 (one block) is the first block of the output
    first_block = generate(until=[], max_gen_toks=4)
    for short, text in zip(first_block, full, strict=True):
        assert text.startswith(short.rstrip("\ufffd")) and len(short) < len(text)


def test_unknown_or_malformed_model_args_fail_before_loading():
    with pytest.raises(ValueError, match=r"unknown model_args key\(s\) \['stepz'\].*'steps'"):
        lem.MDLMEvalHarness.create_from_arg_string("pretrained=/nonexistent,stepz=3")
    with pytest.raises(ValueError, match=r"steps='many'.*must be a int"):
        lem.MDLMEvalHarness.create_from_arg_string("pretrained=/nonexistent,steps=many")
    with pytest.raises(ValueError, match="remasking='sideways'"):
        lem.BD3LMEvalHarness.create_from_arg_string("pretrained=/nonexistent,remasking=sideways")
    with pytest.raises(ValueError, match="needs pretrained="):
        lem.BD3LMEvalHarness.create_from_arg_string("steps=8")
    # the pre-flight check of slurm/eval_tiny_a2d.sh: no model is loaded
    config = lem.check_model_args("a2d_bd3lm", "pretrained=x,steps=8,temperature=0")
    assert config.temperature == 0.0 and isinstance(config.temperature, float)
    with pytest.raises(ValueError, match=r"steps=2 must be >= the number of blocks 4"):
        lem.check_model_args("a2d_bd3lm", "pretrained=x,max_new_tokens=128,block_size=32,steps=2")
    assert run_cli(eval_check.main, ["a2d_mdlm", "pretrained=x,cfg=0.0"]) == 2  # dLLM's old cfg


def test_shipped_task_rows_are_regenerated_and_held_out():
    with open(eval_tasks.TASKS_DIR / "a2dkit_synthetic" / "test.jsonl") as f:
        shipped = [json.loads(line) for line in f]
    assert shipped == eval_tasks.synthetic_task_rows()
    train = {m[0]["content"] for m in make_synthetic_dataset(2000, 0, seed=0)["train"]["messages"]}
    assert not train & {r["prompt"] for r in shipped}
    assert all(r["choices"][r["label"]] == r["answer"] for r in shipped)
    assert all(len(set(r["choices"])) == 4 for r in shipped)


def test_two_process_accelerate_launch_of_the_cli_matches_one_process(model_dir, tasks, tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2 -m a2dkit.eval`` on CPU (torchrun, gloo)
    splits the documents over two ranks and gathers them: the same ELBOs as one process."""
    args = _model_args(model_dir, "mdlm")
    one = lm_eval.simple_evaluate(
        model="a2d_mdlm", model_args=args, tasks=["a2dkit_synthetic_mc"], limit=6,
        task_manager=tasks, apply_chat_template=True,
    )["samples"]["a2dkit_synthetic_mc"]  # fmt: skip
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "--main_process_port", str(_free_port()),
              "-m", "a2dkit.eval", "--model", "a2d_mdlm", "--model_args", args,
              "--tasks", "a2dkit_synthetic_mc", "--limit", "6", "--apply_chat_template",
              "--log_samples", "--output_path", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "a2dkit_synthetic_mc on rank 1..." in proc.stderr  # the second rank took documents
    (path,) = tmp_path.rglob("samples_a2dkit_synthetic_mc_*.jsonl")
    two = {r["doc_id"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert sorted(two) == [s["doc_id"] for s in one] == list(range(6))
    for s in one:
        got = [float(x[0]) for x in two[s["doc_id"]]["filtered_resps"]]
        assert got == pytest.approx([float(x[0]) for x in s["filtered_resps"]], rel=1e-6)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PUBLISHED = "gsm8k_cot bbh minerva_math mmlu mmlu_pro hellaswag humaneval_instruct mbpp_instruct"


def _eval_script(**env) -> subprocess.CompletedProcess:
    script = eval_tasks.TASKS_DIR.parents[2] / "slurm" / "eval_tiny_a2d.sh"
    env = {**os.environ, "DRY_RUN": "1", "CHECK_TASKS": "0", "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(script), "--limit", "5"], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize("algo, block", [("mdlm", 256), ("bd3lm", 32)])
def test_eval_script_dry_run_prints_the_published_settings(model_dir, algo, block):
    proc = _eval_script(ALGO=algo, MODEL=str(model_dir), NUM_PROCESSES="8")
    assert proc.returncode == 0, proc.stderr
    lines = [ln.split(": ", 1) for ln in proc.stderr.splitlines() if ln.count(": ") and "-m" in ln]
    assert [task.split()[-1] for task, _ in lines] == PUBLISHED.split()
    for task, cmd in lines:
        assert f"--model a2d_{algo} " in cmd and "--num_processes 8 --" in cmd
        assert f"steps=256,block_size={block},cfg_scale=0.0,temperature=0.0" in cmd
        assert "max_new_tokens=256," in cmd and "--multi_gpu" in cmd
        assert "--apply_chat_template" in cmd and cmd.endswith("--limit 5")
        shots = 3 if task.endswith("bbh") else 0
        assert f"--num_fewshot {shots} " in cmd
        code = task.split()[-1] in ("humaneval_instruct", "mbpp_instruct")
        assert ("--confirm_run_unsafe_code" in cmd) == code


@pytest.mark.parametrize(
    "env, message",
    [({}, "ALGO=''"), ({"ALGO": "bd3lm", "STEPS": "abc"}, "STEPS='abc'"),
     ({"ALGO": "mdlm", "TEMPERATURE": "-1"}, "TEMPERATURE='-1'"),
     ({"ALGO": "bd3lm", "MODEL": "/nonexistent/ckpt"}, "MODEL='/nonexistent/ckpt'"),
     ({"ALGO": "bd3lm", "EXTRA_MODEL_ARGS": "stepz=3"}, "['stepz']")],
)  # fmt: skip
def test_eval_script_rejects_bad_variables_before_running(env, message):
    proc = _eval_script(**{"ALGO": "", **env})
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "-m a2dkit.eval" not in proc.stderr  # nothing was launched
