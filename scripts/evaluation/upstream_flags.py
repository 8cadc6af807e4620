"""AIx699/MATE's flag names (its README and option.py at commit 6a1a38f), accepted by main.py and test.py
as aliases of this repo's options and listed in --help under one heading (README, "Coming from
AIx699/MATE, RTFM or UR-DMU"). This repo's own names stay the documented ones.

    upstream                      here
    --rgb_list                    --train_list
    --test_rgb_list               main.py: --val_list (selecting on the test list is test-set selection);
                                  test.py: --test_list
    --model_name NAME             main.py: --exp_name; test.py: runs/NAME/checkpoint_best.pth
    --model_arch fast|tiny|base   --model_variant paper_fast|paper_fast|paper_base (upstream's Model(dim=8)
                                  and Model(dim=32); the redesigned model is --model_variant fast)
    --warmup                      --warmup_epochs
    --dropout_rate                --dropout
    --comment                     recorded in config.json (upstream put it in the checkpoint folder's name)
    --use_kfold --fold_id K       the fold{K}_train.txt / fold{K}_val.txt lists of --folds_dir
                                  (default data/manifests/)
    --attn_dropout_rate           refused: upstream reads it nowhere but in its folder's name

An alias and its own option given with different values is refused in one line.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.core.cli import finite_float
from scripts.core.errors import MateError, check_component

HEADING = ("AIx699/MATE names: the upstream repository's flags, each mapped to this repo's option (this "
           "repo's own names are the documented ones)")
ARCHS = {"fast": "paper_fast", "tiny": "paper_fast", "base": "paper_base"}
UPSTREAM_TEST_LIST = Path("ucf_x3d_test.txt")  # upstream test.py's default list
FOLDS_DIR = Path("data/manifests")
PREFIX = "upstream_"
ATTN_DROPOUT = ("--attn_dropout_rate: AIx699/MATE reads it nowhere but in its checkpoint folder's name, and "
                "this repo's attention has no dropout of its own (--dropout is the model's); drop the flag")


def add_upstream_flags(parser: argparse.ArgumentParser, script: str) -> None:
    """The aliases of `script` ("main" or "test") in one argument group; each parses into its own
    `upstream_<name>` attribute, which resolve_upstream_flags maps and removes."""
    group = parser.add_argument_group(HEADING)

    def alias(name: str, help: str, **kw) -> None:
        group.add_argument(f"--{name}", dest=PREFIX + name, default=None, help=help + " (default: none)", **kw)

    arch_help = ("--model_variant paper_fast | paper_fast | paper_base: upstream's Model(dim=8) (fast, tiny) "
                 "and Model(dim=32) (base), the published architecture; this repo's redesigned model is "
                 "--model_variant fast")
    if script == "main":
        alias("rgb_list", "= --train_list", type=Path)
        alias("test_rgb_list", "= --val_list: upstream chose its best epoch on the test list, which is test-set "
                               "selection; give a validation fold (StratifiedKFold.py) for a clean figure", type=Path)
        alias("model_name", "= --exp_name: the run folder runs/<name>/")
        alias("model_arch", "= " + arch_help, choices=tuple(ARCHS))
        alias("warmup", "= --warmup_epochs", type=finite_float)
        alias("dropout_rate", "= --dropout", type=finite_float)
        group.add_argument("--comment", type=str, default=None,
                           help="free text recorded in config.json (upstream put it in its checkpoint folder's "
                                "name) (default: none)")
        group.add_argument("--use_kfold", dest=PREFIX + "use_kfold", action="store_true",
                           help=f"train on fold --fold_id of --folds_dir (default {FOLDS_DIR}/): its "
                                "fold{K}_train.txt and fold{K}_val.txt (default: off)")
        alias("fold_id", "with --use_kfold: K, 0-based, as upstream's option (its folds are numbered 1-5 in "
                         "file names; K = 0 is this repo's fold0, StratifiedKFold.py's numbering)", type=int)
    else:
        alias("test_rgb_list", f"= --test_list (with --model_name and no list: {UPSTREAM_TEST_LIST}, upstream's "
                               "default)", type=Path)
        alias("model_name", "score runs/<name>/checkpoint_best.pth (this repo: --checkpoint)")
        alias("model_arch", "the architecture the run must have: " + arch_help + "; without --model_name or "
                            "--checkpoint the runs of that architecture are listed", choices=tuple(ARCHS))
    alias("attn_dropout_rate", "refused: upstream reads it nowhere but in its checkpoint folder's name", type=finite_float)


def resolve_upstream_flags(args: argparse.Namespace, parser: argparse.ArgumentParser, script: str) -> list[str]:
    """Map the aliases given onto this repo's options (refusing a contradiction) and drop their
    attributes; returns lines to print (what an alias means where it is easy to misread)."""
    given = {k[len(PREFIX):]: v for k, v in vars(args).items() if k.startswith(PREFIX)}
    for key in given:
        delattr(args, PREFIX + key)
    if given.get("attn_dropout_rate") is not None:
        raise MateError(ATTN_DROPOUT)
    notes = []
    mapping = {"rgb_list": "train_list", "test_rgb_list": "val_list", "model_name": "exp_name",
               "model_arch": "model_variant", "warmup": "warmup_epochs", "dropout_rate": "dropout"}
    if script == "test":
        mapping = {"test_rgb_list": "test_list", "model_arch": "upstream_arch", "model_name": "upstream_run"}
    for name, dest in mapping.items():
        value = given.get(name)
        if value is None:
            continue
        if name == "model_arch":
            value = ARCHS[value]
            notes.append(f"--model_arch {given[name]}: the published architecture, --model_variant {value} "
                         "(the redesigned model is --model_variant fast)")
        if name == "test_rgb_list" and script == "main":
            notes.append("--test_rgb_list: the best epoch is chosen on this list; if it is the test list, that "
                         "is test-set selection (upstream's practice), not a clean test figure")
        current = getattr(args, dest, None)
        if current is not None and current != parser.get_default(dest) and current != value:
            raise MateError(f"--{name} {given[name]} and --{dest} {current} contradict each other; give one")
        setattr(args, dest, value)
    if script == "main":
        notes += _kfold(args, given)
    return notes


def _kfold(args: argparse.Namespace, given: dict) -> list[str]:
    if not given.get("use_kfold"):
        if given.get("fold_id") is not None:
            raise MateError("--fold_id needs --use_kfold (or name the lists: --train_list, --val_list)")
        return []
    k = given.get("fold_id") or 0
    if k < 0:
        raise MateError(f"--fold_id: must be 0 or more, got {k}")
    if args.train_list is not None or args.val_list is not None:
        raise MateError("--use_kfold picks the fold's lists itself; drop --train_list / --val_list")
    folds = args.folds_dir or FOLDS_DIR
    args.train_list, args.val_list = folds / f"fold{k}_train.txt", folds / f"fold{k}_val.txt"
    args.folds_dir = None  # one fold, not the fold study
    return [f"--use_kfold --fold_id {k}: training on {args.train_list}, selecting on {args.val_list}"]


def runs_of_variant(runs_dir: Path, variant: str) -> list[str]:
    """The run folders under runs_dir whose config.json names `variant` and that hold a best checkpoint."""
    import json

    found = []
    for config in sorted(runs_dir.glob("*/config.json")):
        try:
            options = json.loads(config.read_text()).get("options", {})
        except (OSError, ValueError, AttributeError):
            continue
        if options.get("model_variant") == variant and (config.parent / "checkpoint_best.pth").is_file():
            found.append(config.parent.name)
    return found


def resolve_test_checkpoint(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """AIx699/MATE's test.py names a run and an architecture, not a file (scripts/evaluation/upstream_flags.py):
    --model_name NAME scores runs/NAME/checkpoint_best.pth, on ucf_x3d_test.txt when no list is given."""
    for note in resolve_upstream_flags(args, parser, "test"):
        print(f"note: {note}")
    name, variant = getattr(args, "upstream_run", None), getattr(args, "upstream_arch", None)
    for key in ("upstream_run", "upstream_arch"):
        if hasattr(args, key):
            delattr(args, key)
    if name is not None:
        check_component(name, "--model_name")
        if args.checkpoint is not None:
            raise MateError("--model_name names the run whose checkpoint is scored; drop --checkpoint or it")
        args.checkpoint = Path("runs") / name / "checkpoint_best.pth"
        if not args.checkpoint.is_file():
            raise MateError(f"--model_name {name}: {args.checkpoint} does not exist (train it with main.py "
                            f"--model_name {name})")
        if not any(getattr(args, k) is not None for k in ("test_list", "video", "video_root", "stream")):
            args.test_list = UPSTREAM_TEST_LIST
    if args.checkpoint is None:
        found = f"; runs of {variant} here: {', '.join(runs_of_variant(Path('runs'), variant)) or 'none'}" \
            if variant else ""
        raise MateError("give --checkpoint (a checkpoint file) or --model_name NAME (runs/NAME/checkpoint_best.pth)"
                        + found)
    if variant is not None:
        from scripts.models.checkpoint import load_checkpoint  # torch: only when a run is checked

        trained = (load_checkpoint(args.checkpoint).get("options") or {}).get("model_variant")
        if trained is not None and trained != variant:
            raise MateError(f"{args.checkpoint}: trained as --model_variant {trained}, not {variant} "
                            "(--model_arch); drop --model_arch or name another run")
