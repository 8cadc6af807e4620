#!/usr/bin/env bash
# Train and test experiments on K folds, JOBS runs at a time, one thread each (the README's fold loop,
# in parallel; the run folders are those of the sequential loop: runs/<name>_fold<k>).
#   bash run_folds.sh LISTS FOLDS EPOCHS JOBS NAME=CONFIG [NAME=CONFIG ...]
#   bash run_folds.sh data/manifests 5 150 2 fast=configs/fast.json      # then: aggregate.py --runs runs/fast_fold*
# LISTS holds fold{k}_{train,val,test}.txt (StratifiedKFold.py). `make folds` and ablations.sh call it.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: bash run_folds.sh LISTS FOLDS EPOCHS JOBS NAME=CONFIG [NAME=CONFIG ...]" >&2; exit 2
fi
LISTS=$1; FOLDS=$2; EPOCHS=$3; JOBS=$4; shift 4
PY=${PY:-python}
export LISTS EPOCHS PY OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

one_run() {  # $1 = run name, $2 = config, $3 = fold
  local run="$1_fold$3"
  "$PY" main.py --config "$2" --train_list "$LISTS/fold$3_train.txt" --val_list "$LISTS/fold$3_val.txt" \
      --exp_name "$run" --max_epoch "$EPOCHS" --no_progress --overwrite > /dev/null
  "$PY" test.py --test_list "$LISTS/fold$3_test.txt" --checkpoint "runs/$run/checkpoint_best.pth" \
      --no_progress --n_boot 200 > /dev/null
  echo "done $run"
}
export -f one_run

for fold in $(seq 0 $((FOLDS - 1))); do
  for spec in "$@"; do echo "${spec%%=*} ${spec#*=} $fold"; done
done | xargs -P "$JOBS" -L 1 bash -c 'one_run "$0" "$1" "$2"'
