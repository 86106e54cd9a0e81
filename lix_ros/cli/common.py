"""Shared CLI behaviour: bad input ends with one readable line and a non-zero exit, not a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

from lix_ros.data.sample import DataError

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A user-facing error of a command line tool."""


def friendly_errors(prog: str) -> Callable:
    def wrap(main: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return int(main(*args, **kwargs) or 0)
            except (CliError, DataError, FileNotFoundError, ValueError) as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                return EXIT_BAD_INPUT
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130
            except BrokenPipeError:  # output piped into e.g. `head`
                sys.stderr.close()
                return 0

        return run

    return wrap
