"""``python -m a2dkit.launch``: accelerate launch that requeues on preemption (``cli.launch``).

Kept at this path because the Slurm recipes and the book name it; the code is in ``a2dkit.cli``.
"""

if __name__ == "__main__":
    import sys

    from a2dkit.cli.errors import run_cli
    from a2dkit.cli.launch import main

    sys.exit(run_cli(main))
