"""Every script's --help states each option's default as the code has it: a help text that says
`(default: X)` must say the parser's own default, so the two cannot drift apart."""
import re

import pytest

from tests.conftest import load_script

SCRIPTS = ("main.py", "test.py", "feature_extractor.py", "makelist.py", "StratifiedKFold.py",
           "StratifiedKFold_verify.py", "aggregate.py", "test1.py", "test2.py", "motion_map_analyze.py",
           "snr_experiment.py", "import_peers.py")


def shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_states_the_codes_default(script):
    parser = load_script(script).get_args_parser()
    wrong = []
    for action in parser._actions:
        if action.dest == "help" or not action.help:
            continue
        said = re.search(r"\(default: ([^)]*)\)", action.help)
        if action.default in (None, False, [], ()) or isinstance(action.default, bool):
            continue  # "none", "off", or a default worked out at run time: said in words
        if said is None:
            wrong.append(f"{action.option_strings[0]}: no '(default: ...)' for {action.default!r}")
        elif not said.group(1).startswith(shown(action.default)):
            wrong.append(f"{action.option_strings[0]}: help says {said.group(1)!r}, the code {action.default!r}")
    assert wrong == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_has_no_doubled_backslash(script):
    """A raw docstring's `\\\\` printed as two backslashes in --help: a shell line continuation is one."""
    assert "\\\\" not in load_script(script).get_args_parser().format_help()
