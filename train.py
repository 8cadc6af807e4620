r"""`python train.py ...` is `python main.py ...`: the same flags, the same run (the original README's
second name for the training entry point; the loop itself is scripts/training/training.py).

    python train.py --train_list data/manifests/fold0_train.txt --val_list data/manifests/fold0_val.txt \
        --exp_name fast_fold0 --model_variant fast
"""
from main import main
from scripts.core.cli import run

if __name__ == "__main__":
    run(main)
