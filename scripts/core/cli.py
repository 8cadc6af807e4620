"""The CLI boundary: user faults become one line on stderr and a non-zero exit."""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from scripts.core.errors import MateError
from scripts.core.memory import keep_freed_memory

EXIT_USER_ERROR = 2


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run a script's `main(argv)`; a MateError prints `error: <message>` and exits with code 2."""
    keep_freed_memory()  # batch-sized blocks are reused, not page-faulted in afresh (scripts/core/memory.py)
    try:
        code = main(argv)
    except MateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)

