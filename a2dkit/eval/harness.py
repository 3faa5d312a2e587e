"""lm-eval models ``a2d_mdlm`` / ``a2d_bd3lm``: generation through a2dkit's samplers, likelihoods
through the Monte-Carlo ELBO of ``a2dkit.eval`` (BD3LM included). Importing registers both.

Run: ``python -m a2dkit.eval --model a2d_bd3lm --tasks gsm8k_cot --apply_chat_template
--model_args "pretrained=DIR,max_new_tokens=256,steps=256,block_size=32,cfg_scale=0.0"``
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992 (estimator).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401  (fills the registry first, so "hf" etc. stay available)
import torch
from lm_eval import utils as lm_utils
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from a2dkit.convert.load import load_model  # never runs model code or unpickles unasked
from a2dkit.eval import elbo, harness_speculative
from a2dkit.eval.harness_config import A2DEvalConfig
from a2dkit.models import loading
from a2dkit.samplers import BD3LMSampler, MDLMSampler

__all__ = [
    "A2DEvalConfig",
    "MDLMEvalHarness",
    "BD3LMEvalHarness",
    "check_model_args",
]

logger = logging.getLogger(__name__)


class _A2DHarness(LM):
    """Shared lm-eval ``LM`` for A2D models; subclasses set the sampler and ELBO."""

    algo = "mdlm"
    sampler_class: type = MDLMSampler

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.config = A2DEvalConfig.from_kwargs(**kwargs)
        self.sampler_config = self.config.sampler_config(self.sampler_class.config_class)
        self._setup_distributed()
        path = harness_speculative.verifier_path(self.config)  # before any weights load
        self.model, self.tokenizer = self._load()
        logger.info("%s: rank %d of %d", self.algo, self._rank, self._world_size)
        self.sampler = self.sampler_class(self.model, self.tokenizer)
        args = (self.config, path, self.model, self.tokenizer, self.sampler)
        self.speculative = harness_speculative.build(*args)  # None unless speculative=...

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
        """``--model_args`` win over lm-eval's CLI-level ``batch_size``/``device`` defaults."""
        args = lm_utils.simple_parse_args_string(arg_string)
        return cls.create_from_arg_obj(args, additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None):
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
        return cls(**{**extra, **arg_dict})

    def _setup_distributed(self) -> None:
        """lm-eval's data parallelism: global rank / world size of ``accelerate launch``."""
        from accelerate import PartialState

        # cpu=True lets torchrun-launched CPU processes join a gloo group (MULTI_CPU)
        cpu = not torch.cuda.is_available() or self.config.device == "cpu"
        self._state = PartialState(cpu=cpu)
        self._rank, self._world_size = self._state.process_index, self._state.num_processes
        if self._world_size > 1:
            self._device = self._state.device
        else:
            device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
            if device.startswith("cuda") and not torch.cuda.is_available():
                # lm-eval's CLI passes device="cuda:0" by default, also on CPU-only machines
                logger.warning("device=%r requested but CUDA is unavailable; using cpu", device)
                device = "cpu"
            self._device = torch.device(device)

    def _load(self):
        c, safe = self.config, dict(trust_remote_code=self.config.trust_remote_code)
        model, tok = c.pretrained, c.tokenizer
        if isinstance(model, (str, Path)):
            dtype = c.dtype if c.dtype == "auto" else getattr(torch, c.dtype)
            opts = dict(allow_pickle_weights=c.allow_pickle_weights, require_a2d=True)
            model, saved = load_model(str(model), dtype=dtype, **opts, **safe)
            tok = tok or saved
        if tok is None:
            raise ValueError("pretrained is a model object: pass tokenizer=<tokenizer or path> too")
        tok = loading.load_tokenizer(str(tok), **safe) if isinstance(tok, (str, Path)) else tok
        return model.to(self._device).eval(), tok

    @property
    def tokenizer_name(self) -> str:
        return str(self.tokenizer.name_or_path).replace("/", "__")

    @property
    def max_length(self) -> int:
        return self.config.max_length or int(self.model.config.max_position_embeddings)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self.tokenizer.chat_template

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt=True):
        """The tokenizer's chat template as a string (lm-eval's ``--apply_chat_template``)."""
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
        )  # fmt: skip

    def tok_encode(self, text: str) -> list[int]:
        """Token ids; special tokens (BOS) are added only if the text does not carry them yet."""
        bos = self.tokenizer.bos_token
        add = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add)["input_ids"]

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        from accelerate.utils import gather

        return tensor if self._world_size == 1 else gather(tensor)

    def gather_object(self, obj, dst: int = 0):
        if self._world_size == 1:
            return [obj]
        result = [None] * self._world_size if self._rank == dst else None
        torch.distributed.gather_object(obj, object_gather_list=result, dst=dst)
        return result

    def barrier(self) -> None:
        if self._world_size > 1:
            self._state.wait_for_everyone()

    # --- generation ----------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Sample each context with the A2D sampler; cut at ``until`` and EOS.

        Requests are grouped by their ``gen_kwargs`` and run ``batch_size`` at a time.
        ``max_gen_toks`` caps ``max_new_tokens`` (steps scale down in proportion); other
        gen_kwargs (temperature, do_sample) are ignored: ``model_args`` set the sampler.
        With ``speculative=source|self`` the rows are the AR verifier's greedy decoding.
        """
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(json.dumps(req.args[1], sort_keys=True, default=str), []).append(i)
        out: list[str] = [""] * len(requests)
        for idx in groups.values():
            gen_kwargs = requests[idx[0]].args[1]
            for s in range(0, len(idx), self.config.batch_size):
                chunk = idx[s : s + self.config.batch_size]
                texts = self._generate([requests[i].args[0] for i in chunk], gen_kwargs)
                for i, text in zip(chunk, texts, strict=True):
                    out[i] = text
                    self.cache_hook.add_partial("generate_until", requests[i].args, text)
        return out

    def _generate(self, contexts: list[str], gen_kwargs: dict) -> list[str]:
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        if not all(isinstance(u, str) for u in until):
            raise TypeError(f"gen_kwargs until={until!r} must be a string or a list of strings")
        config = self._sampler_config(gen_kwargs.get("max_gen_toks"))
        keep = self.max_length - config.max_new_tokens
        prompts = [self.tok_encode(c)[-keep:] if keep > 0 else [] for c in contexts]
        if self.speculative is not None:
            rows = self.speculative.generate(prompts, config.max_new_tokens)
        else:
            out = self.sampler.sample(prompts, config)
            rows = out.sequences[:, out.gen_start :].tolist()
        return [self._postprocess(row, until) for row in rows]

    def _sampler_config(self, max_gen_toks: int | None):
        config = self.sampler_config
        if max_gen_toks is None or int(max_gen_toks) >= config.max_new_tokens:
            return config
        new = int(max_gen_toks)
        num_blocks = math.ceil(new / config.block_size)
        steps = max(math.ceil(config.steps * new / config.max_new_tokens), num_blocks)
        return dataclasses.replace(config, max_new_tokens=new, steps=steps)

    def _postprocess(self, ids: list[int], until: list[str]) -> str:
        """Cut at the first EOS id, then at the first stop string; drop special tokens."""
        eos = self.tokenizer.eos_token_id
        if eos is not None and eos in ids:
            ids = ids[: ids.index(eos)]
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        for stop in until:
            if stop:
                text = text.split(stop, 1)[0]
        for special in self.tokenizer.all_special_tokens:
            text = text.replace(special, "")
        return text

    # --- likelihood ----------------------------------------------------------------------------
    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: trailing context spaces go to the continuation; empty context = EOS."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if not context:
            prefix = self.tokenizer.bos_token_id or self.tokenizer.eos_token_id
            return [prefix], self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        whole, ctx = self.tok_encode(context + continuation), self.tok_encode(context)
        return ctx, whole[len(ctx) :]

    def elbo(self, context_ids: list[int], target_ids: list[int]) -> float:
        """Monte-Carlo ELBO of ``target_ids`` after ``context_ids`` (left-truncated to fit)."""
        if not target_ids:
            raise ValueError("the continuation is empty after tokenization; nothing to score")
        ids = (list(context_ids) + list(target_ids))[-self.max_length :]
        prompt_len = max(len(ids) - len(target_ids), 0)
        kwargs = dict(
            prompt_len=prompt_len, mc_num=self.config.mc_num, estimator=self.config.estimator,
            batch_size=self.config.mc_batch_size, right_shift_logits=self.config.right_shift_logits,
            generator=torch.Generator().manual_seed(self.config.seed),
        )  # fmt: skip
        return float(self._elbo(torch.tensor(ids), **kwargs).mean)

    def _elbo(self, ids: torch.Tensor, **kwargs) -> elbo.ELBOResult:
        return elbo.mdlm_elbo(self.model, ids, **kwargs)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """(ELBO of the continuation, whether decoding reproduces it) per request."""
        results = []
        for req in requests:
            ctx, target = self._encode_pair(*req.args)
            greedy = self._is_greedy(ctx, target) if self.config.check_greedy else False
            results.append((self.elbo(ctx, target), greedy))
            self.cache_hook.add_partial("loglikelihood", req.args, results[-1])
        return results

    def _is_greedy(self, ctx: list[int], target: list[int]) -> bool:
        config = dataclasses.replace(
            self.sampler_config, max_new_tokens=len(target), steps=len(target), temperature=0.0
        )  # one token per step, the sampler's greedy decoding
        out = self.sampler.sample([ctx[-(self.max_length - len(target)) :]], config)
        return out.sequences[0, out.gen_start :].tolist() == target

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """ELBO of whole documents: lm-eval's disjoint rolling windows, each scored once, summed."""
        prefix = self.tokenizer.bos_token_id or self.tokenizer.eos_token_id
        results = []
        for req in requests:
            (text,) = req.args
            windows = lm_utils.get_rolling_token_windows(
                self.tok_encode(text), prefix, self.max_length, context_len=1
            )
            pairs = [lm_utils.make_disjoint_window(w) for w in windows]
            results.append(sum(self.elbo(ctx, target) for ctx, target in pairs))
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, results[-1])
        return results


@register_model("a2d_mdlm")
class MDLMEvalHarness(_A2DHarness):
    """``--model a2d_mdlm``: MDLMSampler (semi-AR blocks of ``block_size``) and ``mdlm_elbo``."""

    algo = "mdlm"
    sampler_class = MDLMSampler


@register_model("a2d_bd3lm")
class BD3LMEvalHarness(_A2DHarness):
    """``--model a2d_bd3lm``: BD3LMSampler (KV-cached blocks) and ``bd3lm_elbo`` (same blocks)."""

    algo = "bd3lm"
    sampler_class = BD3LMSampler

    def _elbo(self, ids: torch.Tensor, **kwargs) -> elbo.ELBOResult:
        return elbo.bd3lm_elbo(self.model, ids, block_size=self.sampler_config.block_size, **kwargs)


HARNESSES = {"a2d_mdlm": MDLMEvalHarness, "a2d_bd3lm": BD3LMEvalHarness}


def check_model_args(model: str, model_args: str) -> A2DEvalConfig:
    """Validate ``--model_args`` of ``model`` without loading anything (for pre-flight checks).

    Raises:
        ValueError: unknown model name or key, a malformed value, or invalid sampler options.
    """
    if model not in HARNESSES:
        raise ValueError(f"model={model!r} is not an a2dkit model; choose one of {list(HARNESSES)}")
    config = A2DEvalConfig.from_kwargs(**lm_utils.simple_parse_args_string(model_args))
    config.sampler_config(HARNESSES[model].sampler_class.config_class)
    return config
