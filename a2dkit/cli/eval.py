"""``python -m a2dkit.eval``: lm-eval's own CLI with the ``a2d_mdlm`` / ``a2d_bd3lm`` models.

Run: python -m a2dkit.eval --model a2d_mdlm --model_args pretrained=DIR --tasks ... (lm-eval CLI).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; lm-evaluation-harness.
"""

from __future__ import annotations

import sys

from a2dkit.cli.errors import run_cli
from a2dkit.eval.tasks import TASKS_DIR
from a2dkit.models import loading


def _flag(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one wins)."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg[len(name) + 1 :]
    return value


def _preflight(argv: list[str]) -> None:
    """Check an a2dkit model's ``--model_args`` and its path (no weights are read)."""
    from a2dkit.eval.harness import HARNESSES, check_model_args  # lazy: imports lm_eval

    model = _flag(argv, "--model")
    if model in HARNESSES:
        config = check_model_args(model, _flag(argv, "--model_args") or "")
        path, model_config = loading.load_config(config.pretrained, config.trust_remote_code)
        loading.check_a2d(config.pretrained, model_config)
        loading.check_weights(path, config.allow_pickle_weights)


def main(argv: list[str] | None = None) -> None:
    """lm-eval's own CLI with ``a2d_mdlm`` / ``a2d_bd3lm`` registered (all lm-eval flags work).

    Without ``--include_path``, the kit's local tasks (``a2dkit_synthetic``...) are added.
    """
    from lm_eval.__main__ import cli_evaluate

    from a2dkit.eval import harness  # noqa: F401  lazy: imports lm_eval; registers a2d_*

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    _preflight(sys.argv[1:])  # bad model_args or a missing model: an error before lm-eval starts
    if len(sys.argv) > 2 and not any(a.startswith("--include_path") for a in sys.argv):
        sys.argv += ["--include_path", str(TASKS_DIR)]
    cli_evaluate()


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
