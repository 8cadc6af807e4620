"""The docs never copy a default by hand wrongly: wherever README.md or docs/*.md states a flag's default
(`--flag value` (default), `--flag` (default value), `--flag` defaults to value), it is the parser's
default of a script that has the flag."""
import re

from tests.conftest import ROOT, load_script
from tests.test_help_defaults import SCRIPTS, shown

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VALUE = r"(`[^`]+`|[0-9][0-9.e+-]*)"  # a value in backticks or a number, not words ("the checkpoint's folder")
STATED = (re.compile(r"`(--[a-z_0-9]+) ([^`\s]+)` \(default[),]"),    # `--layout map` (default)
          re.compile(r"`(--[a-z_0-9]+)` \(default:? " + VALUE),        # `--threads` (default 0 = auto)
          re.compile(r"`(--[a-z_0-9]+)` defaults to " + VALUE))         # `--seed` defaults to 42


def defaults() -> dict[str, dict[str, str]]:
    """flag -> {script: its default as --help shows it}."""
    found: dict[str, dict[str, str]] = {}
    for script in SCRIPTS:
        for action in load_script(script).get_args_parser()._actions:
            for flag in action.option_strings:
                found.setdefault(flag, {})[script] = shown(action.default)
    return found


def statements() -> list[tuple[str, int, str, str, str]]:
    """(file, line number, flag, stated value, the line) for every stated default in the docs."""
    out = []
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for pattern in STATED:
                out += [(path.name, number, m.group(1), m.group(2).strip("`").rstrip("."), line)
                        for m in pattern.finditer(line)]
    return out


def test_docs_state_defaults():
    assert len(statements()) >= 6  # the patterns still find the docs' statements (6 when written)


def test_every_documented_default_is_the_codes():
    table, wrong = defaults(), []
    for name, number, flag, value, line in statements():
        if flag not in table:
            wrong.append(f"{name}:{number}: {flag} is no flag of any script")
            continue
        if value not in table[flag].values():  # several scripts share a flag (--seed: 0, 42): one must say it
            wrong.append(f"{name}:{number}: {flag} default {value!r}, the code: "
                         + ", ".join(f"{s} {v!r}" for s, v in table[flag].items()))
    assert wrong == []
