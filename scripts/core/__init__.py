"""The bottom layer: errors, file I/O, locks, run folders, devices and threads, memory, CLI glue, plots.
Imports nothing else of scripts/ (docs/design.md §1, layers)."""
