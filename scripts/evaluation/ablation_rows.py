"""The rows of the ablation table, read from the configs that make them (docs/model.md, "Configs and the
ablation table"): configs/fast.json is the full model, configs/mil.json the MIL baseline, and every
configs/ablations/<row>.json says in its "_row" what it changes against the config it extends:

    "_row": {"change": "remove", "part": "Motion Map", "order": 1}
    "_row": {"change": "add", "part": "a second block (TCC, attention, feed-forward)"}
    "_row": {"change": "set", "part": "no dropout -> published 0.4", "decides": true}

change: remove (a part, or a part of one), add (a part), set (a value: a published choice put back, or a
departure kept as an option); part: the words of the table's Part column; order: the row's place among
the rows of its change (the original README's order; rows without one follow by file name); decides: the
row decides a default of `fast`, so ablations.sh runs it over DECIDE_SEEDS.

    python -m scripts.evaluation.ablation_rows            # the rows for ablations.sh: key, config, decides
    python -m scripts.evaluation.ablation_rows --docs     # the Markdown list docs/model.md holds
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from scripts.core.errors import MateError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FULL = "full"
CHANGES = ("remove", "add", "set")  # what a row does to the model or loss of the config it extends
ROW_FIELDS = {"change", "part", "order", "decides"}


@dataclass(frozen=True)
class AblationRow:
    key: str  # the run-name suffix: runs/<prefix>_<key>_s<seed>_fold<k>
    change: str  # none (the full model) | remove | add | set
    part: str
    config: Path
    order: float = math.inf
    decides: bool = False


# The table's frame: the full model first; the MIL baseline (every part of MATE removed) after the removals
REFERENCE = (AblationRow(FULL, "none", "none (full model)", CONFIGS / "fast.json", decides=True),
             AblationRow("mil", "remove", "everything: the MIL baseline", CONFIGS / "mil.json", order=100))


def read_row(path: Path) -> AblationRow:
    """The row an ablation config declares; a missing or malformed "_row" is a MateError naming the file."""
    try:
        declared = json.loads(path.read_text()).get("_row")
    except (OSError, ValueError, AttributeError) as exc:
        raise MateError(f"{path}: cannot read the ablation config ({exc})") from None
    if not isinstance(declared, dict) or declared.get("change") not in CHANGES or not declared.get("part"):
        raise MateError(f"{path}: an ablation config needs \"_row\": {{\"change\": one of {', '.join(CHANGES)}, "
                        "\"part\": the words of the table}")
    unknown = sorted(set(declared) - ROW_FIELDS)
    if unknown:
        raise MateError(f"{path}: \"_row\" has unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(ROW_FIELDS))})")
    return AblationRow(path.stem, declared["change"], str(declared["part"]), path,
                       float(declared.get("order", math.inf)), bool(declared.get("decides", False)))


def table_rows(folder: Path = CONFIGS / "ablations") -> tuple[AblationRow, ...]:
    """The full model, then the rows by change (remove, add, set), each by its order, then file name."""
    rows = list(REFERENCE[1:]) + [read_row(p) for p in sorted(folder.glob("*.json"))]
    rows.sort(key=lambda r: (CHANGES.index(r.change), r.order, r.key))
    keys = [r.key for r in rows]
    assert len(set(keys)) == len(keys) and FULL not in keys, f"ablation rows repeat a key: {keys}"
    return (REFERENCE[0], *rows)


def docs_list(rows: tuple[AblationRow, ...]) -> str:
    """The Markdown table of the rows that docs/model.md holds (tests/test_ablation_table.py compares)."""
    lines = ["| row | change | part | config | seeds |", "|---|---|---|---|---|"]
    for r in rows:
        where = r.config.relative_to(CONFIGS.parent).as_posix()
        lines.append(f"| `{r.key}` | {r.change} | {r.part} | `{where}` | {'DECIDE_SEEDS' if r.decides else 'SEEDS'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", action="store_true", help="print the Markdown list of docs/model.md")
    args = parser.parse_args(argv)
    rows = table_rows()
    if args.docs:
        print(docs_list(rows), end="")
        return
    for r in rows:
        print(r.key, r.config.relative_to(CONFIGS.parent).as_posix(), int(r.decides))


if __name__ == "__main__":
    main()
