"""Shared CLI behaviour: bad input ends with one readable line and a non-zero exit, not a traceback."""

from __future__ import annotations

import argparse
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


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help shows each option's default (unless it is None / False or the help already states it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default" in text or not action.option_strings \
                or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)".strip()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (`prog: error: ...`) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def number(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    """An argparse type: `kind` (int or float) within [low, high] ((low, high] when low_open)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return value

    return parse
