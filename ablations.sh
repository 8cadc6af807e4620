#!/usr/bin/env bash
# The ablation table: every row (the full model, configs/ablations/*, the MIL baseline) trained and
# tested on every fold through main.py and test.py (run_folds.sh), then `aggregate.py --table`. What
# `make ablations` runs; on the real features, e.g. with the published folds and 150 epochs:
#   bash ablations.sh data/manifests 5 150 2 abl
# Arguments: folds folder (fold{k}_{train,val,test}.txt), number of folds, epochs, parallel jobs,
# run-name prefix. Runs are runs/<prefix>_<row>_fold<k>; the table goes to runs/ablation_table_<prefix>.*
set -euo pipefail
LISTS=${1:-data/manifests/demo}; FOLDS=${2:-5}; EPOCHS=${3:-25}; JOBS=${4:-2}; PREFIX=${5:-abl}
rows=("${PREFIX}_full=configs/fast.json" "${PREFIX}_mil=configs/mil.json")
for cfg in configs/ablations/*.json; do rows+=("${PREFIX}_$(basename "$cfg" .json)=$cfg"); done
bash "$(dirname "$0")/run_folds.sh" "$LISTS" "$FOLDS" "$EPOCHS" "$JOBS" "${rows[@]}"
"${PY:-python}" aggregate.py --table runs/"${PREFIX}"_*_fold* --overwrite
