"""MATE's shared package: every top-level script is a thin CLI over these modules."""
