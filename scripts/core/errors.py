"""The one exception type for faults a user can cause (bad files, bad flags).

Bugs stay assertions; a MateError is caught once, at the CLI boundary (scripts/core/cli.py), and printed
as a single line that names the file and the fault.
"""


class MateError(Exception):
    """A fault in the user's input. The message names the file (or flag) and the fault."""


def check_component(value: str, what: str) -> str:
    """A name that becomes one path component (a run folder's --exp_name, upstream's --model_name): refused
    in one line when empty, `.` or `..`, or holding a path separator, so nothing is written outside the
    folder the user named."""
    import os

    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if value in ("", ".", "..") or any(sep in value for sep in separators) or "\0" in value:
        raise MateError(f"{what}: {value!r} is not a folder name (empty, '.', '..' or a path separator); give a "
                        "plain name such as fast_fold0")
    return value
