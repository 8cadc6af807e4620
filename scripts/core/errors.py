"""The one exception type for faults a user can cause (bad files, bad flags).

Bugs stay assertions; a MateError is caught once, at the CLI boundary (scripts/core/cli.py), and printed
as a single line that names the file and the fault.
"""


class MateError(Exception):
    """A fault in the user's input. The message names the file (or flag) and the fault."""
