#!/usr/bin/env bash
# The 5-fold x 150-epoch study of the fast model on 1,610 UCF-Crime-sized synthetic videos (290 test),
# through the CLI, timed: the figure of docs/speed.md. Not part of `make test`.
#   bash benchmarks/fold_study.sh [JOBS] [EPOCHS]        # default: 5 jobs (all folds at once), 150 epochs
# Makes data/synthetic_ucf (2 GB of float32 maps) and data/manifests/synthetic_ucf once, then runs
# run_folds.sh (one thread per job; runs/study_fast_s0_fold<k>, removed first) and aggregate.py; prints
# the wall time.
set -euo pipefail
JOBS=${1:-5}; EPOCHS=${2:-150}
PY=${PY:-.venv/bin/python}
DATA=data/synthetic_ucf; LISTS=data/manifests/synthetic_ucf
if [ ! -f "$LISTS/fold4_test.txt" ]; then
  "$PY" makelist.py --synthetic "$DATA" --n_train 1610 --n_test 290 --seed 0 --overwrite
  "$PY" StratifiedKFold.py --rgb_list "$DATA/train.txt" --test_list "$DATA/test.txt" --k 5 --out_dir "$LISTS" \
      --seed 0 --overwrite
fi
rm -rf runs/study_fast_s0_fold*  # a timing starts from scratch (run_folds.sh skips tested runs)
start=$(date +%s)
PY=$PY bash run_folds.sh "$LISTS" 5 "$EPOCHS" "$JOBS" study_fast=configs/fast.json
"$PY" aggregate.py --runs runs/study_fast_s0_fold* --overwrite
end=$(date +%s)
echo "5 folds x $EPOCHS epochs, $JOBS jobs at a time: $((end - start)) s wall ($(nproc) cores, $(git rev-parse --short HEAD))"
