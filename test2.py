r"""Motion ON vs OFF: paired ROC curves and a test of the AUC difference on the same test videos.

    # two models trained on the same fold: the full one and the --no_motion_map ablation
    python test2.py --test_list data/manifests/fold0_test.txt \
        --checkpoint_on runs/fast_fold0/checkpoint_best.pth --checkpoint_off runs/no_motion_map_fold0/checkpoint_best.pth
    # one model scored twice: with its MotionMap, and with the motion input switched off (all zeros)
    python test2.py --test_list data/manifests/fold0_test.txt --checkpoint runs/fast_fold0/checkpoint_best.pth

Writes (default: the ON run's plots/ folder) motion_on_off_roc.png (both ROC curves, AUC and 95% CI in
the legend) and motion_on_off.json (AUCs, DeLong's test and a paired bootstrap of ΔAUC = ON − OFF).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.cli import run
from scripts.option import get_analysis_parser, get_runtime_parser, resolve_analysis_paths


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser("test2.py", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[get_analysis_parser(), get_runtime_parser()])
    parser.add_argument("--checkpoint_on", type=Path, default=None, help="the model with motion (default: none)")
    parser.add_argument("--checkpoint_off", type=Path, default=None,
                        help="the model without motion, e.g. the no_motion_map ablation on the same fold "
                             "(default: score --checkpoint_on / --checkpoint with an all-zero MotionMap)")
    parser.add_argument("--n_boot", type=int, default=2000, help="paired bootstrap replicates (default: 2000)")
    return parser


def compare_on_off(labels, on, off, *, n_boot: int, seed: int) -> dict:
    """AUCs with DeLong CIs, DeLong's paired test and the paired bootstrap of ΔAUC = ON − OFF."""
    from scripts.metrics import delong_ci, delong_test, paired_bootstrap, roc_auc

    return {"auc_on": roc_auc(labels, on), "auc_off": roc_auc(labels, off),
            "ci_on": list(delong_ci(labels, on)), "ci_off": list(delong_ci(labels, off)),
            "delong": delong_test(labels, on, off),
            "paired_bootstrap": paired_bootstrap(labels, on, off, n_boot=n_boot, seed=seed)}


def plot(labels, on, off, result, path: Path) -> Path:
    from sklearn.metrics import roc_curve

    from scripts.plots import new_figure, save_figure

    fig = new_figure(5.2, 5.0)
    ax = fig.add_subplot()
    for scores, key, name in ((on, "on", "motion ON"), (off, "off", "motion OFF")):
        fpr, tpr, _ = roc_curve(labels, scores)
        lo, hi = result[f"ci_{key}"]
        ax.plot(fpr, tpr, drawstyle="steps-post", label=f"{name}: AUC {result[f'auc_{key}']:.4f} [{lo:.3f}, {hi:.3f}]")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    p = result["delong"]["p_value"]
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02),
           title=f"ΔAUC {result['delong']['delta']:+.4f}, DeLong p = {p:.3g}")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from scripts.analysis_inputs import fill_analysis_inputs
    from scripts.evaluation import load_for_scoring
    from scripts.fileio import write_json
    from scripts.scoring import score_dataset
    from scripts.devices import resolve_device

    if args.checkpoint_on is not None:
        args.checkpoint = args.checkpoint_on
    fill_analysis_inputs(args, "test2.py")
    checkpoint_on, out_dir = resolve_analysis_paths(args, need_checkpoint=True)
    device = resolve_device(args.device)
    common = dict(device=device, batch_size=args.batch_size, progress=not args.no_progress)
    model, _, ds = load_for_scoring(checkpoint_on, args.test_list, device=device, progress=not args.no_progress,
                                       force_settings=args.force_settings)
    on = score_dataset(model, ds, **common).video
    if args.checkpoint_off is not None:
        model_off, _, ds_off = load_for_scoring(args.checkpoint_off, args.test_list, device=device, progress=False,
                                              force_settings=args.force_settings)
        off, how = score_dataset(model_off, ds_off, **common).video, f"{args.checkpoint_off}"
    else:
        off, how = score_dataset(model, ds, motion_off=True, **common).video, "the same model, MotionMap set to 0"
    labels = ds.labels.numpy().astype(int)
    result = compare_on_off(labels, on, off, n_boot=args.n_boot, seed=args.seed)
    result.update(checkpoint_on=str(checkpoint_on), off=how, test_list=str(args.test_list), n_videos=len(labels))
    paths = [plot(labels, on, off, result, out_dir / "motion_on_off_roc.png"),
             write_json(out_dir / "motion_on_off.json", result)]
    d, b = result["delong"], result["paired_bootstrap"]
    print(f"motion ON : ROC-AUC {result['auc_on']:.4f} [{result['ci_on'][0]:.4f}, {result['ci_on'][1]:.4f}]  ({checkpoint_on})")
    print(f"motion OFF: ROC-AUC {result['auc_off']:.4f} [{result['ci_off'][0]:.4f}, {result['ci_off'][1]:.4f}]  ({how})")
    print(f"ΔAUC {d['delta']:+.4f}: DeLong z {d['z']:.3f}, p {d['p_value']:.4g}; paired bootstrap 95% CI "
          f"[{b['ci_low']:+.4f}, {b['ci_high']:+.4f}], p {b['p_value']:.4g}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run(main)
