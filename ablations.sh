#!/usr/bin/env bash
# The ablation table: every row (the full model, configs/ablations/*, the MIL baseline) trained and
# tested on every fold through main.py and test.py (run_folds.sh), then `aggregate.py --table`.
# `make ablations` runs it on both synthetic regimes; on the real features, e.g. with the published
# folds and 150 epochs:
#   bash ablations.sh data/manifests 5 150 2 abl
# Arguments: folds folder (fold{k}_{train,val,test}.txt), number of folds, epochs, parallel jobs,
# run-name prefix. The rows come from the configs (each configs/ablations/*.json declares its "_row";
# scripts/evaluation/ablation_rows.py); those that decide a default (the full model and each published
# choice that fast departs from: "decides": true) run with the seeds DECIDE_SEEDS (default "0 1 2"),
# first; the others with SEEDS (default "0"). Runs are runs/<prefix>_<row>_s<seed>_fold<k>; a tested run is
# skipped, so a cut-off table resumes. The table goes to runs/ablation_table_<prefix>.{csv,md,png}.
set -euo pipefail
LISTS=${1:-data/manifests/demo}; FOLDS=${2:-5}; EPOCHS=${3:-25}; JOBS=${4:-2}; PREFIX=${5:-abl}
DECIDE_SEEDS=${DECIDE_SEEDS:-0 1 2}; SEEDS=${SEEDS:-0}
here=$(dirname "$0")
deciding=(); others=()
rows=$("${PY:-python}" -m scripts.evaluation.ablation_rows)  # key, config, decides (0/1); run from the repo
while read -r row cfg decides; do
  if [ "$decides" = 1 ]; then deciding+=("${PREFIX}_${row}=$cfg@${DECIDE_SEEDS// /,}")
  else others+=("${PREFIX}_${row}=$cfg@${SEEDS// /,}"); fi
done <<< "$rows"
bash "$here/run_folds.sh" "$LISTS" "$FOLDS" "$EPOCHS" "$JOBS" "${deciding[@]}"
bash "$here/run_folds.sh" "$LISTS" "$FOLDS" "$EPOCHS" "$JOBS" "${others[@]}"
"${PY:-python}" aggregate.py --table "${RUNS_DIR:-runs}/${PREFIX}"_*_fold* --overwrite
