"""The CLI boundary: user faults become one line on stderr and a non-zero exit (docs/design.md §10).

Nothing else reaches the terminal around that line: argparse's errors are one line too (no usage block,
OneLineParser), Python warnings (torch's, numpy's) raised during the run are held and shown only when the
run ends otherwise, and FFmpeg's own log lines are silenced (OPENCV_FFMPEG_LOGLEVEL; PyAV logs nothing by
default), since every decoding fault is reported by the repo itself, naming the file.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from typing import Callable, NoReturn, Sequence

from scripts.core.errors import MateError
from scripts.core.memory import keep_freed_memory

EXIT_USER_ERROR = 2
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when OpenCV first opens a video


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one MateError line, `error: main.py: argument --lr: invalid float value:
    'x' (see --help)`, not a usage block."""

    def error(self, message: str) -> NoReturn:
        raise MateError(f"{self.prog}: {message} (see --help)")


def finite_float(text: str) -> float:
    """argparse type of every float flag: NaN and infinities are refused in one line (they pass `> 0` and
    `<= 1` checks and then make a silent wrong result or a traceback far from the flag)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """argparse type of every seed flag: numpy and torch take 0 .. 2**32 - 1, and say so in a traceback."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed must lie in [0, 2**32 - 1], got {value}")
    return value


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run a script's `main(argv)`; a MateError prints `error: <message>` and exits with code 2, and the
    warnings raised before it are dropped; any other end shows them, once each."""
    keep_freed_memory()  # batch-sized blocks are reused, not page-faulted in afresh (scripts/core/memory.py)
    with warnings.catch_warnings(record=True) as held:
        try:
            code = main(argv)
        except MateError as exc:
            print(f"error: {one_line(str(exc))}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            show(held)
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        except BaseException:
            show(held)
            raise
    show(held)
    sys.exit(code or 0)


def one_line(text: str) -> str:
    """A message as one line: characters a terminal or str.splitlines would break on, or would not show (a
    file name can hold any of them), written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def show(held: list[warnings.WarningMessage]) -> None:
    """The held warnings, each (message, category, place) once."""
    seen = set()
    for w in held:
        key = (str(w.message), w.category, w.filename, w.lineno)
        if key not in seen:
            seen.add(key)
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
