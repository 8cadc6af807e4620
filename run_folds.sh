#!/usr/bin/env bash
# Train and test experiments on K folds and a list of seeds, JOBS runs at a time, one thread each.
#   bash run_folds.sh LISTS FOLDS EPOCHS JOBS NAME=CONFIG[@SEEDS] [NAME=CONFIG[@SEEDS] ...]
#   bash run_folds.sh data/manifests 5 150 2 fast=configs/fast.json     # then: aggregate.py --runs runs/fast_s*_fold*
#   SEEDS="0 1 2" bash run_folds.sh data/manifests 5 150 2 fast=configs/fast.json base=configs/base.json@0,1
# LISTS holds fold{k}_{train,val,test}.txt (StratifiedKFold.py). Seeds: the spec's own list after '@'
# (comma-separated), else $SEEDS (space-separated, default 0). Runs are runs/<NAME>_s<seed>_fold<k>
# (main.py --seed <seed>); NAME is a plain folder name, and every value is checked before any run (one line,
# exit 2). A run whose test_metrics.json exists is skipped and an unfinished one is
# continued (main.py --resume), so a study cut off midway finishes only what is missing when run again;
# pass --overwrite to main.py yourself to start a run over. `make folds` and ablations.sh call it.
# GT=<annotation file> also tests at frame level (test.py --gt); ORACLE=1 also records the test-oracle epoch
# (main.py --oracle_test_list fold<k>_test.txt, with --oracle_gt $GT): `make benchmark` sets both.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: bash run_folds.sh LISTS FOLDS EPOCHS JOBS NAME=CONFIG[@SEEDS] [NAME=CONFIG[@SEEDS] ...]" >&2; exit 2
fi
LISTS=$1; FOLDS=$2; EPOCHS=$3; JOBS=$4; shift 4
PY=${PY:-python}
# Every value checked once, before any run: one line and exit 2, not one error per run
fail() { echo "error: run_folds.sh: $*" >&2; exit 2; }
for arg in "FOLDS=$FOLDS" "EPOCHS=$EPOCHS" "JOBS=$JOBS"; do
  [[ "${arg#*=}" =~ ^[1-9][0-9]*$ ]] || fail "${arg%%=*} must be a whole number >= 1, got '${arg#*=}'"
done
for fold in $(seq 0 $((FOLDS - 1))); do
  for part in train val test; do
    [ -f "$LISTS/fold${fold}_$part.txt" ] || fail "$LISTS/fold${fold}_$part.txt: not found (FOLDS=$FOLDS; \
StratifiedKFold.py --out_dir $LISTS --k $FOLDS writes the lists)"
  done
done
for spec in "$@"; do
  [[ "$spec" == *=* ]] || fail "'$spec' is not NAME=CONFIG[@SEEDS] (NAME names the runs NAME_s<seed>_fold<k>)"
  name=${spec%%=*}; rest=${spec#*=}; config=${rest%%@*}
  [[ "$name" =~ ^[A-Za-z0-9_.+-]+$ && "$name" != . && "$name" != .. ]] \
    || fail "'$spec': NAME '$name' is not a plain folder name (letters, digits, _ . + -)"
  [ -f "$config" ] || fail "'$spec': config $config not found"
  seeds=${SEEDS:-0}; if [ "$rest" != "$config" ]; then seeds=${rest#*@}; seeds=${seeds//,/ }; fi
  for seed in $seeds; do [[ "$seed" =~ ^[0-9]+$ ]] || fail "'$spec': seed '$seed' is not a whole number"; done
done
RUNS_DIR=${RUNS_DIR:-runs}
GT=${GT:-}; ORACLE=${ORACLE:-}
export LISTS EPOCHS PY RUNS_DIR GT ORACLE OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

one_run() {  # $1 = experiment name, $2 = config, $3 = seed, $4 = fold
  local run="$1_s$3_fold$4" rc=0 gt=() oracle=()
  if [ -f "$RUNS_DIR/$run/test_metrics.json" ]; then echo "skip $run (tested)"; return 0; fi
  if [ -n "$GT" ]; then gt=(--gt "$GT"); fi
  if [ -n "$ORACLE" ]; then
    oracle=(--oracle_test_list "$LISTS/fold$4_test.txt")
    if [ -n "$GT" ]; then oracle+=(--oracle_gt "$GT"); fi
  fi
  "$PY" main.py --config "$2" --train_list "$LISTS/fold$4_train.txt" --val_list "$LISTS/fold$4_val.txt" \
      --exp_name "$run" --runs_dir "$RUNS_DIR" --seed "$3" --max_epoch "$EPOCHS" --no_progress --resume \
      ${oracle[@]+"${oracle[@]}"} > /dev/null \
    && "$PY" test.py --test_list "$LISTS/fold$4_test.txt" --checkpoint "$RUNS_DIR/$run/checkpoint_best.pth" \
      --no_progress --n_boot 200 ${gt[@]+"${gt[@]}"} > /dev/null || rc=$?
  # a failed run is named and the others go on (xargs exits 123 at the end); 255 stops the loop
  if [ "$rc" -ne 0 ]; then echo "failed $run (exit $rc)" >&2; return "$rc"; fi
  echo "done $run"
}
export -f one_run

for fold in $(seq 0 $((FOLDS - 1))); do
  for spec in "$@"; do
    name=${spec%%=*}; rest=${spec#*=}; config=${rest%%@*}; seeds=${SEEDS:-0}
    if [ "$rest" != "$config" ]; then seeds=${rest#*@}; seeds=${seeds//,/ }; fi
    for seed in $seeds; do echo "$name $config $seed $fold"; done
  done
done | xargs -P "$JOBS" -L 1 bash -c 'one_run "$0" "$1" "$2" "$3"'
