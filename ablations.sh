#!/usr/bin/env bash
# The ablation table: every row (the full model, configs/ablations/*, the MIL baseline) trained and
# tested on every fold through main.py and test.py, then `aggregate.py --table`. What `make ablations`
# runs; on the real features, e.g. with the published folds and 150 epochs:
#   bash ablations.sh data/manifests 5 150 2 abl
# Arguments: folds folder (fold{k}_{train,val,test}.txt), number of folds, epochs, parallel jobs,
# run-name prefix. Runs are runs/<prefix>_<row>_fold<k>; the table goes to runs/ablation_table_<prefix>.*
set -euo pipefail
LISTS=${1:-data/manifests/demo}; FOLDS=${2:-5}; EPOCHS=${3:-25}; JOBS=${4:-2}; PREFIX=${5:-abl}
PY=${PY:-python}
export LISTS EPOCHS PREFIX PY OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

one_run() {  # $1 = row name, $2 = config, $3 = fold
  local run="${PREFIX}_$1_fold$3"
  "$PY" main.py --config "$2" --train_list "$LISTS/fold$3_train.txt" --val_list "$LISTS/fold$3_val.txt" \
      --exp_name "$run" --max_epoch "$EPOCHS" --no_progress --overwrite > /dev/null
  "$PY" test.py --test_list "$LISTS/fold$3_test.txt" --checkpoint "runs/$run/checkpoint_best.pth" \
      --no_progress --n_boot 200 > /dev/null
  echo "done $run"
}
export -f one_run

{
  for fold in $(seq 0 $((FOLDS - 1))); do
    echo "full configs/fast.json $fold"
    echo "mil configs/mil.json $fold"
    for cfg in configs/ablations/*.json; do echo "$(basename "$cfg" .json) $cfg $fold"; done
  done
} | xargs -P "$JOBS" -L 1 bash -c 'one_run "$0" "$1" "$2"'
"$PY" aggregate.py --table runs/"${PREFIX}"_*_fold* --overwrite
