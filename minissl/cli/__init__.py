"""``python -m minissl``: what a user runs outside a notebook.

    python -m minissl info                            # profile, device, versions, data sets
    python -m minissl download cifar10 [--root DIR]   # fetch a data set for the full profile
    python -m minissl train simclr --dataset cifar10 --backbone resnet18 --epochs 200 \\
        --checkpoint-dir runs/simclr
        # pretrain any image method; prints loss, images/s, peak GPU memory and kNN accuracy
        # every epoch; --checkpoint-dir makes a stopped run resume (the same command again;
        # other settings are refused, --fresh starts afresh; --checkpoint-every N saves
        # every N steps); Ctrl-C or SIGTERM prints where the checkpoint is, on one line
    python -m minissl evaluate runs/simclr            # kNN and 10-labels-per-class probe
    python -m minissl bench --epochs 5 --seeds 0 1    # every image method, one budget, one table

Defaults come from the active profile (``MINISSL_PROFILE``, or ``--profile``); every one can
be overridden. ``python -m minissl COMMAND --help`` lists a command's options (module
``parser``); the commands are in ``commands``, the checks of the values given in ``args``.
"""

import sys

from minissl.cli.commands import RUN_FILE
from minissl.cli.parser import make_parser

__all__ = ["RUN_FILE", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``argv`` defaults to the command line.

    From the command line (``argv`` is None) a minissl error or a bad value prints its
    message without a traceback (set ``MINISSL_DEBUG=1`` to see it); called with ``argv``,
    as tests do, the exception is raised.

    Example:
        >>> main(["bench", "--methods", "simclrr"])
        Traceback (most recent call last):
        ...
        SystemExit: --methods: no recipe for method 'simclrr'. Did you mean 'simclr'? ...
    """
    import os

    from minissl.utils import MinisslError

    args = make_parser().parse_args(argv)
    if getattr(args, "profile", None):
        from minissl import profiles

        profiles.use(args.profile)
    if argv is not None or os.environ.get("MINISSL_DEBUG"):
        return args.run(args)
    import signal

    received = []

    def terminate(signum, frame):  # SIGTERM stops like Ctrl-C: one line, no traceback
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, terminate)
    try:
        return args.run(args)
    except (MinisslError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(_interrupted(err, sys.argv[1:]), file=sys.stderr, flush=True)
        return 128 + (received[0] if received else signal.SIGINT)


def _interrupted(err: KeyboardInterrupt, argv: list[str]) -> str:
    """The one line printed when a command is stopped: where things are, how to go on."""
    import shlex

    from minissl.train import TrainingInterrupted

    again = "python -m minissl " + shlex.join([a for a in argv if a != "--fresh"])
    if isinstance(err, TrainingInterrupted) and err.checkpoint is not None:
        return (f"stopped at step {err.step}; the last checkpoint (step {err.saved_step}) is "
                f"{err.checkpoint}; resume with: {again}")
    if isinstance(err, TrainingInterrupted):
        return f"stopped at step {err.step}; {str(err).split(': ', 1)[-1]}"
    saved = _checkpoint_in(argv)
    if saved is not None:  # stopped while a resumed run was loading: its checkpoint is intact
        return (f"stopped before training began; the checkpoint {saved} is unchanged; "
                f"resume with: {again}")
    return "stopped before training began; nothing was saved"


def _checkpoint_in(argv: list[str]):
    """The checkpoint file that ``--checkpoint-dir`` in ``argv`` names, if it exists."""
    from pathlib import Path

    from minissl.train import CHECKPOINT_NAME

    for i, arg in enumerate(argv):
        folder = (arg.split("=", 1)[1] if arg.startswith("--checkpoint-dir=")
                  else argv[i + 1] if arg == "--checkpoint-dir" and i + 1 < len(argv) else None)
        if folder is not None and (Path(folder) / CHECKPOINT_NAME).is_file():
            return Path(folder) / CHECKPOINT_NAME
    return None
