"""One way every ``python -m a2dkit...`` entry point reports bad input: a single line
``error: <what was wrong, the bad value, what is valid>`` on stderr and exit code 2.

Set ``A2DKIT_DEBUG=1`` to get the full traceback instead.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = [
    "USAGE_EXIT_CODE",
    "UsageError",
    "USER_ERRORS",
    "close_process_group",
    "one_line",
    "run_cli",
]

USAGE_EXIT_CODE = 2  # as argparse's own usage errors
DEBUG_ENV = "A2DKIT_DEBUG"


class UsageError(ValueError):
    """Bad command-line input; ``run_cli`` prints it as one line."""


# bad values (ValueError, incl. UsageError and the loaders' refusals), wrong types, missing
# files, an unreachable Hub or dataset: things the user can fix by changing the command
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    FileNotFoundError,
    PermissionError,
    ConnectionError,
)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (multi-line messages joined with '; ')."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = "; ".join(lines) or type(err).__name__
    return text[len("error: ") :] if text.startswith("error: ") else text


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "0") not in ("", "0", "false", "False")


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run ``main(argv)``; a user error becomes ``error: ...`` on stderr and exit code 2.

    Returns:
        ``main``'s exit code (0 when it returns None), or ``USAGE_EXIT_CODE``.
    """
    ok = False
    try:
        code = main(argv)
        ok = True
    except USER_ERRORS as err:
        if _debug():
            raise
        print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
        return USAGE_EXIT_CODE
    finally:
        close_process_group(wait=ok)
    return 0 if code is None else int(code)


def close_process_group(wait: bool = True) -> None:
    """Destroy the ``torch.distributed`` group a launched run (torchrun, accelerate) made, if any.

    A gloo process that exits with its group alive can abort in interpreter teardown
    ("terminate called without an active exception", SIGABRT), which fails the whole launch.
    With ``wait``, the ranks first meet at a barrier, so none leaves while another still works.
    """
    dist = getattr(sys.modules.get("torch"), "distributed", None)  # never import torch for this
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()
