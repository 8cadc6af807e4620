"""main.py's training loop (it validates with evaluation's metrics and scoring). Imports every layer below."""
