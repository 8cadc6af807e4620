r"""The training loop; `python train.py ...` behaves exactly as `python main.py ...` (same flags).

    python train.py --train_list data/manifests/fold0_train.txt --val_list data/manifests/fold0_val.txt \
        --exp_name fast_fold0 --model_variant fast

The loop itself lives in scripts/training.py (`run_training`, `train_one_epoch`) so tests and other
scripts call it directly.
"""
from main import get_args_parser, main  # noqa: F401  (same parser, same entry point)
from scripts.cli import run
from scripts.training import run_training, train_one_epoch  # noqa: F401

if __name__ == "__main__":
    run(main)
