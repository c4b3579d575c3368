"""The ``gridnet`` command line: the one place that uses both ``gridnet`` and
``adapters``. :mod:`.parsers` holds the parsers, :mod:`.commands` the commands,
:mod:`.data` and :mod:`.inputs` read their input."""
from __future__ import annotations

import os
import sys

from .data import CLIError
from .parsers import build_parser

__all__ = ["main", "build_parser", "CLIError"]


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()          # a closed pipe shows here, not at interpreter exit
        return status
    except CLIError as exc:
        print(f"gridnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`gridnet evaluate ... | head`): stop quietly, as Unix
        # tools do; stdout goes to devnull so that the interpreter's final flush is silent
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
