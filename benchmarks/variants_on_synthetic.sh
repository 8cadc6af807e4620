#!/usr/bin/env bash
# Detection of every variant on the synthetic set, same data, budget and seeds (docs/model.md's table):
# 400 train / 200 test synthetic map videos, fold 0 of 5 (320 train / 80 val), 30 epochs with
# configs/fast.json's optimiser and loss settings, seeds 0-2; prints test ROC-AUC / PR-AUC per run.
#   bash benchmarks/variants_on_synthetic.sh [work_dir]     (about 30 minutes on 2 CPU cores)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
WORK="${1:-/tmp/mate_variants}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
mkdir -p "$WORK" && cd "$WORK"
"$PY" "$REPO/makelist.py" --synthetic syn --n_train 400 --n_test 200 --seed 0 --overwrite > /dev/null
"$PY" "$REPO/StratifiedKFold.py" --rgb_list syn/train.txt --test_list syn/test.txt --k 5 --out_dir folds \
    --overwrite > /dev/null
for v in fast base paper_fast paper_base; do
  for seed in 0 1 2; do
    "$PY" "$REPO/main.py" --config "$REPO/configs/fast.json" --model_variant "$v" --seed "$seed" \
        --train_list folds/fold0_train.txt --val_list folds/fold0_val.txt --exp_name "${v}_s$seed" \
        --max_epoch 30 --no_progress --overwrite | tail -1
    "$PY" "$REPO/test.py" --test_list folds/fold0_test.txt --checkpoint "runs/${v}_s$seed/checkpoint_best.pth" \
        --no_progress | grep -E "^(ROC|PR)-AUC" | sed "s/^/$v seed $seed: /"
  done
done
