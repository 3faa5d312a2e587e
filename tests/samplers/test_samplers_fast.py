"""The fast sampling paths: LM head on the denoised columns only, MDLM prefix / dual KV caches."""

from __future__ import annotations

import copy

import pytest
import torch

from a2dkit.convert import to_diffusion
from a2dkit.samplers import BD3LMSampler, MDLMSampler, MDLMSamplerConfig, head_logits
from a2dkit.tutorial import tiny

PROMPTS = ["ROMEO: But, soft! what", "All: Speak", "First Citizen: Before we proceed"]
OPTIONS = [{}, dict(cfg_scale=1.5, right_shift_logits=True), dict(threshold=0.3)]


def build(tokenizer, family="qwen3", layers=2, tied=False, seed=0):
    """A converted tiny model in float64 (ties and reductions cannot hide a difference)."""
    tok = copy.deepcopy(tokenizer)
    ar = tiny.tiny_model(family, vocab_size=tiny.padded_vocab_size(len(tok)), seed=seed,
                         num_hidden_layers=layers, tie_word_embeddings=tied)  # fmt: skip
    model, tok = to_diffusion(ar, tok)[:2]
    return model.double().eval(), tok


class FullLogits(torch.nn.Module):
    """Today's reference: no ``logits_to_keep``, so the head runs on every column (then sliced)."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.config = model, model.config

    @property
    def device(self):
        return self.inner.device

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def head_rows(model):
    """A list that records how many columns each LM-head call sees, and the hook's handle."""
    rows = []
    handle = model.get_output_embeddings().register_forward_pre_hook(
        lambda m, args: rows.append(args[0].shape[1])
    )
    return rows, handle


def prompts(tok, n=2):
    return [tok(p)["input_ids"] for p in PROMPTS[:n]]


# ---------------------------------------------------------------- LM head on the span only


@pytest.mark.parametrize("family, tied", [("qwen3", False), ("qwen3", True), ("gpt2", True)])
def test_head_logits_equal_the_sliced_full_logits(small_tokenizer, family, tied):
    model, _ = build(small_tokenizer, family, tied=tied)
    assert model.config.tie_word_embeddings == tied
    x = torch.randint(0, 250, (2, 12))
    keep = torch.arange(5, 9)
    full = model(x).logits  # (B, L, V)
    rows, handle = head_rows(model)
    try:
        part = head_logits(model, x, keep)
    finally:
        handle.remove()
    assert rows == [4]  # the head saw the kept columns only
    assert torch.allclose(part, full[:, keep], atol=1e-12, rtol=0)
    assert torch.equal(head_logits(FullLogits(model), x, keep), full[:, keep])


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
@pytest.mark.parametrize("options", OPTIONS)
def test_samplers_give_todays_tokens_with_the_head_on_the_block(
    small_tokenizer, sampler_cls, options
):
    model, tok = build(small_tokenizer)
    kw = dict(max_new_tokens=8, block_size=4, steps=8, **options)
    rows, handle = head_rows(model)
    try:
        fast = sampler_cls(model, tok).sample(prompts(tok), **kw)
    finally:
        handle.remove()
    ref = sampler_cls(FullLogits(model), tok).sample(prompts(tok), **kw)
    assert torch.equal(fast.sequences, ref.sequences) and fast.nfe == ref.nfe
    assert all(torch.equal(a, b) for a, b in zip(fast.history, ref.history, strict=True))
    assert max(rows) <= 4 < fast.sequences.shape[1]  # never the whole canvas


# ---------------------------------------------------------------- MDLM prefix / dual cache


@pytest.mark.parametrize(
    "family, options", [("qwen3", o) for o in OPTIONS] + [("gpt2", dict(right_shift_logits=True))]
)
def test_mdlm_kv_cache_is_exact_for_a_one_layer_model(small_tokenizer, family, options):
    """One layer: keys/values depend on their own token only, so the stale cache is exact."""
    model, tok = build(small_tokenizer, family, layers=1)
    kw = dict(max_new_tokens=12, block_size=4, steps=12, **options)
    exact = MDLMSampler(model, tok).sample(prompts(tok, 3), **kw)
    for kv_cache in ("prefix", "dual"):
        cached = MDLMSampler(model, tok).sample(prompts(tok, 3), kv_cache=kv_cache, **kw)
        assert torch.equal(cached.sequences, exact.sequences) and cached.nfe == exact.nfe


@pytest.mark.parametrize("kv_cache", ["prefix", "dual"])
def test_mdlm_kv_cache_runs_only_block_columns_after_each_refresh(small_tokenizer, kv_cache):
    model, tok = build(small_tokenizer, layers=2)
    fed = []  # columns in each forward call
    hook = model.register_forward_pre_hook(
        lambda m, args, kw: fed.append((args or [kw.get("input_ids")])[0].shape[1]),
        with_kwargs=True,
    )
    kw = dict(max_new_tokens=12, block_size=4, steps=6)  # 2 steps per block
    try:
        out = MDLMSampler(model, tok).sample(prompts(tok, 1), kv_cache=kv_cache, **kw)
    finally:
        hook.remove()
    total, start = out.sequences.shape[1], out.gen_start
    later = [4] * 3 if kv_cache == "dual" else [total - s for s in range(start, total, 4)]
    assert fed == [n for step in later for n in (total, step)]  # refresh, then a cached step
    assert out.nfe == 6


class Recorder(FullLogits):
    """Passes ``logits_to_keep`` on and records the logits of every call."""

    def __init__(self, model):
        super().__init__(model)
        self.logits = []

    def forward(self, *args, logits_to_keep=0, **kwargs):
        out = self.inner(*args, logits_to_keep=logits_to_keep, **kwargs)
        self.logits.append(out.logits)
        return out


@pytest.mark.parametrize("layers", [1, 2])
def test_mdlm_kv_cache_is_exact_at_refreshes_and_approximate_in_between(small_tokenizer, layers):
    model, tok = build(small_tokenizer, layers=layers)
    p = prompts(tok, 3)
    one = dict(max_new_tokens=12, block_size=4, steps=3)  # one step per block: all refreshes
    exact = MDLMSampler(model, tok).sample(p, **one)
    for kv_cache in ("prefix", "dual"):
        cached = MDLMSampler(model, tok).sample(p, kv_cache=kv_cache, **one)
        assert torch.equal(cached.sequences, exact.sequences)
    runs = {}
    for kv_cache in ("none", "prefix", "dual"):  # 2 steps per block: every other one is cached
        runs[kv_cache] = Recorder(model)
        MDLMSampler(runs[kv_cache], tok).sample(p, kv_cache=kv_cache, max_new_tokens=8,
                                                block_size=4, steps=4)  # fmt: skip
    none = runs["none"].logits
    for kv_cache in ("prefix", "dual"):
        cached = runs[kv_cache].logits
        assert torch.equal(cached[0], none[0])  # a refresh is the exact forward
        gap = (cached[1] - none[1]).abs().max()  # the same canvas, after the same first step
        assert gap < 1e-10 if layers == 1 else gap > 1e-6  # 2 layers: a real approximation


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(kv_cache="full"), "kv_cache='full'.*none"),
     (dict(kv_cache="prefix", block_size=32, max_new_tokens=32), "block_size=32 >= max_new"),
     (dict(kv_cache="dual", block_size=64, max_new_tokens=32), "kv_cache='dual'"),
     (dict(kv_cache="dual", threshold=0.9, remasking="random"), "threshold=0.9")],
)  # fmt: skip
def test_bad_kv_cache_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MDLMSamplerConfig(**{"block_size": 8, "max_new_tokens": 32, **kwargs})


def test_sample_cli_passes_kv_cache_and_threshold(small_tokenizer, tmp_path, capsys):
    from a2dkit.cli import sample as sample_cli

    model, tok = build(small_tokenizer)
    model = model.float()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    flags = dict(max_new_tokens=8, steps=8, block_size=4, kv_cache="dual", threshold=0.005)
    argv = ["--model_name_or_path", str(tmp_path), "--algo", "mdlm", "--prompts", "ROMEO:"]
    assert sample_cli.main(argv + [f"--{k}={v}" for k, v in flags.items()]) == 0
    out = MDLMSampler(model, tok).sample([tok("ROMEO:")["input_ids"]], **flags)
    printed = capsys.readouterr().out
    assert f"{sample_cli.completion(tok, out, 0)}\n" in printed
    assert f"{out.nfe} forward passes" in printed and out.nfe < 8  # threshold was applied


def test_keep_columns_keeps_the_prefix_and_the_chosen_columns_in_order():
    from transformers import DynamicCache

    from a2dkit.samplers.kv_cache import keep_columns

    cache = DynamicCache()
    keys = torch.arange(7.0).view(1, 1, 7, 1).expand(1, 2, 7, 3).contiguous()
    cache.update(keys, -keys, 0)
    keep_columns(cache, 3, [0, 2, 3])  # columns 3, 5, 6 after the 3 cached ones
    assert cache.layers[0].keys[0, 0, :, 0].tolist() == [0, 1, 2, 3, 5, 6]
    assert cache.layers[0].values[0, 1, :, 0].tolist() == [0, -1, -2, -3, -5, -6]
    assert cache.get_seq_length() == 6
    keep_columns(cache, 4, [0])  # a prefix: cropped
    assert cache.layers[0].keys[0, 0, :, 0].tolist() == [0, 1, 2, 3, 5]
