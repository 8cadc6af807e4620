"""Manifests, split lists, folds, feature folders and their sidecar format, frame ground truth, the
synthetic set and one module per benchmark (XD-Violence). Imports core and models."""
