r"""Train MATE on precomputed features (docs/design.md §5); everything goes to runs/<exp_name>/.

    python main.py --train_list data/manifests/fold0_train.txt --val_list data/manifests/fold0_val.txt \
        --batch_size 16 --lr 0.002 --max_epoch 150 --exp_name motion_cond_fast --model_variant fast
    python main.py --config configs/fast.json --train_list ... --val_list ... --exp_name fast_fold0
    python main.py --config configs/ablations/no_motion_map.json ...   # one ablation row
    python main.py ... --exp_name fast_fold0 --resume                  # continue an interrupted run
    python main.py ... --model_variant paper_base --pretrained_ckpt data/published/MATE_base.pkl  # fine-tune
    python main.py --config configs/fast.json --folds_dir data/manifests --folds 5 --seeds 0 1 2 \
        --exp_name fast     # the whole fold study in one process: runs/fast_s<seed>_fold<k>/
    python main.py --rgb_list train.txt --test_rgb_list val.txt --model_arch fast --model_name motion_fast
                            # AIx699/MATE's flag names (scripts/evaluation/upstream_flags.py): --model_arch fast is paper_fast

Options: code defaults < --config file < flags on the command line. The run folder holds config.json,
train.log, metrics.csv, checkpoint_best.pth (best validation ROC-AUC), checkpoint_last.pth, plots/.
One job per run folder: a second main.py on the same --exp_name exits 2 naming the first (its lock,
.mate.lock). --resume continues only with the run's options (--max_epoch may grow: the schedule is then
recomputed for the new length from the stored step) and starts from scratch where the folder holds no
checkpoint_last.pth yet, so a requeue script may always pass it.
"""
from __future__ import annotations

import argparse

from scripts.core.cli import OneLineParser, run
from scripts.core.errors import MateError
from scripts.evaluation.upstream_flags import add_upstream_flags, resolve_upstream_flags
from scripts.option import (get_config_parser, get_data_parser, get_loss_parser, get_model_parser,
                            get_runtime_parser, get_train_parser, parse_args)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser(
        "main.py", description=__doc__, add_help=add_help, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[get_config_parser(), get_train_parser(), get_model_parser(), get_loss_parser(),
                 get_data_parser(), get_runtime_parser(plots=True)])
    add_upstream_flags(parser, "main")
    return parser


def main(argv=None) -> int:
    parser = get_args_parser()
    args = parse_args(parser, argv)
    for note in resolve_upstream_flags(args, parser, "main"):
        print(f"note: {note}")
    if args.folds_dir is not None:
        return study(args)
    if args.train_list is None or args.val_list is None:
        raise MateError("--train_list and --val_list are required (e.g. data/manifests/fold0_train.txt), or "
                        "--folds_dir for a fold study")
    from scripts.training.training import run_training  # torch and the model load only when there is work

    summary = run_training(args)
    best = summary["best"]
    print(f"best epoch {best['epoch']}: val ROC-AUC {best['val_roc_auc']:.4f}, PR-AUC {best['val_pr_auc']:.4f}"
          f" -> {summary['run_dir']}/checkpoint_best.pth")
    return 0


def study(args) -> int:
    """--folds_dir: every fold x seed in this process (scripts/training/fold_study.py)."""
    if args.train_list is not None or args.val_list is not None:
        raise MateError("--folds_dir trains each fold on its own lists; drop --train_list / --val_list")
    if args.folds < 1 or args.study_workers < 0:
        raise MateError(f"--folds must be at least 1 and --study_workers 0 or more (got {args.folds}, "
                        f"{args.study_workers})")
    from scripts.training.fold_study import run_study

    for summary in run_study(args):
        best = summary["best"]
        print(f"{summary['run_dir']}: best epoch {best['epoch']}, val ROC-AUC {best['val_roc_auc']:.4f}"
              + ("" if summary["finished"] else f" (stopped after epoch {summary['epoch']})"))
    return 0


if __name__ == "__main__":
    run(main)
