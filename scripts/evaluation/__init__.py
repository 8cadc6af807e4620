"""Metrics, scoring, test.py's evaluation, aggregation and its reports, the ablation table, scoring your
own videos and their outputs. Imports everything below training."""
