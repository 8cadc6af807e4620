"""The one exception type for faults a user can cause (bad files, bad flags).

Bugs stay assertions; a MateError is caught once, at the CLI boundary (scripts/core/cli.py), and printed
as a single line that names the file and the fault.
"""


class MateError(Exception):
    """A fault in the user's input. The message names the file (or flag) and the fault."""


def check_component(value: str, what: str) -> str:
    """A name that becomes one path component (a run folder's --exp_name, upstream's --model_name, test.py's
    --fold in preds_fold{X}.npy, a peer list's video name): refused in one line when empty, `.` or `..`, or
    holding a path separator, so nothing is written outside the folder the user named."""
    import os

    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if value in ("", ".", "..") or any(sep in value for sep in separators) or "\0" in value:
        raise MateError(f"{what}: {value!r} is not a plain name (empty, '.', '..' or a path separator): it "
                        "becomes one file or folder name in the output folder")
    return value


def mirrored_path(out_dir, relative, what: str):
    """`out_dir / relative` for a path mirrored on purpose (a video's path under --video_root, its
    extension dropped): every component a plain name (check_component: none empty, '.', '..'), never
    absolute, and the result inside `out_dir` once symbolic links are followed; else one MateError."""
    from pathlib import Path, PurePath

    relative = PurePath(relative)
    if relative.is_absolute() or not relative.parts:
        raise MateError(f"{what}: {str(relative)!r} is not a relative path under the output folder")
    for part in relative.parts:
        check_component(part, what)
    path = Path(out_dir) / relative
    if not path.resolve().is_relative_to(Path(out_dir).resolve()):
        raise MateError(f"{what}: {path} leads outside {out_dir} (a symbolic link on the way)")
    return path
