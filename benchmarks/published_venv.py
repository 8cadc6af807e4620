"""The scratch venv the published extraction pipeline runs in (benchmarks/bench_video.py --side_by_side).

    python benchmarks/published_venv.py            # build it once (a few minutes), print its python
    python benchmarks/published_venv.py --check    # exit 0 when it is built and imports

The published feat_extractor.py (AIx699/MATE) needs pytorchvideo 0.1.5 and torchvision, which this repo
does not install. The venv lives outside the repo, under $MATE_PUBLISHED_VENV (default
~/.cache/mate/published-venv), and holds: torch 2.13.0 (the CPU build on this machine's disk, the
repo's own pin), av, pytorchvideo 0.1.5 with fvcore and iopath, and torchvision 0.28 installed without
its dependencies. Two edits make that torchvision import offline beside a torch it was not built for:
  - its compiled operators (`_meta_registrations`, `_autograd_registrations`) are not imported: they
    register kernels for torchvision::nms & co., which the CPU-only torch build lacks, and the pipeline
    uses none of them (transforms only);
  - `torchvision.transforms.functional_tensor`, which pytorchvideo 0.1.5 imports and newer torchvision
    renamed to `_functional_tensor`, is re-exported under the old name.
Nothing here touches the repo's .venv.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

PACKAGES = ["torch==2.13.0", "numpy", "av==18.1.0", "pytorchvideo==0.1.5", "fvcore", "iopath", "parameterized"]
NO_DEPS = ["torchvision==0.28.0", "pillow"]
PROBE = "import pytorchvideo.data, pytorchvideo.models.hub, torchvision.transforms.v2"


def location() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mate" / "published-venv"
    return Path(os.environ.get("MATE_PUBLISHED_VENV", default))


def python_of(root: Path) -> Path:
    return root / "bin" / "python"


def works(root: Path) -> bool:
    py = python_of(root)
    return py.exists() and subprocess.run([str(py), "-c", PROBE], capture_output=True).returncode == 0


def _patch_torchvision(py: Path) -> None:
    found = subprocess.run([str(py), "-c", "import importlib.util as u; "
                            "print(u.find_spec('torchvision').submodule_search_locations[0])"],
                           capture_output=True, text=True, check=True)
    package = Path(found.stdout.strip())
    init = package / "__init__.py"
    text = init.read_text()
    text = re.sub(r"^\s*_(meta|autograd)_registrations,\s*\n", "", text, flags=re.M)
    text = re.sub(r"_(meta|autograd)_registrations,\s*", "", text)
    init.write_text(text)
    (package / "transforms" / "functional_tensor.py").write_text(
        "# pytorchvideo 0.1.5 imports this old name (benchmarks/published_venv.py)\n"
        "from torchvision.transforms._functional_tensor import *  # noqa: F401,F403\n")


def build(root: Path | None = None, quiet: bool = False) -> Path:
    """The venv's python, building the venv first when it is missing or broken."""
    root = root or location()
    if works(root):
        return python_of(root)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"building the published pipeline's venv in {root} (once; a few minutes)")
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    py = python_of(root)
    log = root.with_suffix(".log")
    with open(log, "w") as out:
        for extra, packages in (([], PACKAGES), (["--no-deps"], NO_DEPS)):
            done = subprocess.run([str(py), "-m", "pip", "install", "-q", *extra, *packages], stdout=out, stderr=out)
            if done.returncode:
                raise SystemExit(f"error: pip install {' '.join(packages)} failed in {root}; see {log}")
    _patch_torchvision(py)
    if not works(root):
        raise SystemExit(f"error: {root}: the venv was built but `{PROBE}` fails; see {log}")
    return py


def main(argv=None) -> int:
    parser = argparse.ArgumentParser("published_venv.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether it is built (exit 0) or not (1)")
    args = parser.parse_args(argv)
    if args.check:
        ok = works(location())
        print(f"{location()}: {'ready' if ok else 'not built'}")
        return 0 if ok else 1
    print(build())
    return 0


if __name__ == "__main__":
    sys.exit(main())
