"""The model's parts beside scripts/model.py: MotionMap, fast paths, the fused difference projection, the
published architecture, losses, checkpoints. Imports core only."""
