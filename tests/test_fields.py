"""A model config field is declared once (scripts/models/fields.py) and reaches every place from there: a field
added to MateConfig at run time, with no other edit, becomes a flag with a help line, a config-file key, a
checkpoint key, a resume guard, and a value the published variants refuse; with its history row, older
files migrate; the history table accounts for every field of today's configs."""
import dataclasses
import json

import pytest

from scripts.core.errors import MateError
from scripts.models import config as config_module
from scripts.models import history
from scripts.models.checkpoint import load_checkpoint, save_checkpoint, stored_model_config
from scripts.models.config import MateConfig, MilConfig, config_for_variant
from scripts.models.fields import PARTS, SIZES, option
from scripts.models.history import MATE, MIL, Change, current_format, keys_at
from scripts.option import options_to_dict, parse_args
from scripts.training.resume import check_resume_options
from scripts.training.training import model_config_from_args
from tests.conftest import load_script

NEW = "use_runtime_part"  # a field no config has


def extended_config(monkeypatch, *, with_row: bool = True, **field_args) -> type:
    """MateConfig with one more field, as a researcher adds it (and, with_row, its history row)."""
    declared = option(**({"default": False, "help": "a part added at run time", "group": PARTS} | field_args))
    extended = dataclasses.make_dataclass("MateConfig", [(NEW, type(declared.default), declared)],
                                          bases=(MateConfig,))
    monkeypatch.setattr(config_module, "MateConfig", extended)
    if with_row:
        monkeypatch.setattr(history, "HISTORY", history.HISTORY + [
            Change(current_format() + 1, MATE, "added", NEW, declared.default, why="the new part")])
    return extended


def main_args(argv):
    return parse_args(load_script("main.py").get_args_parser(), [str(a) for a in argv])


def test_a_field_added_at_run_time_becomes_a_flag_a_key_and_a_guard(monkeypatch, tmp_path):
    """The field alone, no other edit: flag, help line, config key, refusals, checkpoint key, resume guard."""
    extended = extended_config(monkeypatch, with_row=False)

    # a flag, with its help line and default
    help_text = " ".join(load_script("main.py").get_args_parser().format_help().split())
    assert f"--{NEW} a part added at run time (default: off; fixed for paper_fast/paper_base)" in help_text
    cfg = model_config_from_args(main_args([f"--{NEW}"]), in_channels=192)
    assert isinstance(cfg, extended) and getattr(cfg, NEW) is True
    assert getattr(model_config_from_args(main_args([]), in_channels=192), NEW) is False

    # a config-file key, checked like every other
    (tmp_path / "on.json").write_text(json.dumps({"model_variant": "base", NEW: True}))
    assert getattr(model_config_from_args(main_args(["--config", tmp_path / "on.json"]), in_channels=192), NEW)
    (tmp_path / "bad.json").write_text(json.dumps({NEW: "yes"}))
    with pytest.raises(MateError, match=f"key '{NEW}' must be true or false"):
        main_args(["--config", tmp_path / "bad.json"])

    # the published variants have no such part (refused, not ignored); the MIL baseline has none of MATE's
    with pytest.raises(MateError, match=f"{NEW} must be False for paper_fast"):
        model_config_from_args(main_args(["--model_variant", "paper_fast", f"--{NEW}"]), in_channels=192)
    with pytest.raises(MateError, match=f"--{NEW}: an option of MATE's parts; --model_variant mil"):
        model_config_from_args(main_args(["--model_variant", "mil", f"--{NEW}"]), in_channels=192)

    # a checkpoint key: stored and rebuilt key for key; a file without it is refused, never filled in
    config = dataclasses.asdict(cfg)
    save_checkpoint(tmp_path / "c.pth", {"format": current_format(), "model": {}, "model_config": config})
    state = load_checkpoint(tmp_path / "c.pth")
    assert getattr(stored_model_config(state["model_config"], source="c"), NEW) is True
    old = {k: v for k, v in config.items() if k != NEW}
    save_checkpoint(tmp_path / "old.pth", {"format": current_format(), "model": {}, "model_config": old})
    with pytest.raises(MateError, match=f"old.pth: model config lacks '{NEW}'"):
        load_checkpoint(tmp_path / "old.pth")

    # a resume guard: the run's options hold it, and a resume that changes it is refused naming it
    stored, now = options_to_dict(main_args([])), options_to_dict(main_args([f"--{NEW}"]))
    with pytest.raises(MateError, match=f"--resume with --{NEW} True, but the run was made with"):
        check_resume_options(stored, now, source=tmp_path / "checkpoint_last.pth")


def test_its_history_row_makes_the_next_format_and_migrates_older_files(monkeypatch, tmp_path):
    """With its row (the one other line a new field needs), the format moves on and the files of the
    format before get the row's value."""
    before = current_format()
    extended_config(monkeypatch)
    assert current_format() == before + 1
    config = dataclasses.asdict(config_for_variant("fast", **{NEW: True}))
    for version, stored in ((before + 1, config), (before, {k: v for k, v in config.items() if k != NEW})):
        save_checkpoint(tmp_path / f"f{version}.pth", {"format": version, "model": {}, "model_config": stored})
        state = load_checkpoint(tmp_path / f"f{version}.pth")
        assert state["format"] == before + 1
        assert state.get("migrated_from_format") == (None if version > before else before)
        assert getattr(stored_model_config(state["model_config"], source="c"), NEW) is (version > before)


def test_a_value_field_gets_its_type_choices_and_bounds_from_its_declaration(monkeypatch):
    extended_config(monkeypatch, default=3, help="width of the smoothing kernel", group=SIZES, minimum=1)
    help_text = " ".join(load_script("main.py").get_args_parser().format_help().split())
    assert f"--{NEW} {NEW.upper()} width of the smoothing kernel (default: 3 for every variant; fixed for" in help_text
    assert getattr(model_config_from_args(main_args([f"--{NEW}", "5"]), in_channels=192), NEW) == 5
    with pytest.raises(MateError, match=f"{NEW} must be a positive integer, got 0"):
        model_config_from_args(main_args([f"--{NEW}", "0"]), in_channels=192)
    with pytest.raises(MateError, match=f"main.py: argument --{NEW}: invalid int value: 'wide'"):
        main_args([f"--{NEW}", "wide"])  # one line (scripts/core/cli.py: OneLineParser), no usage block


@pytest.mark.parametrize("fam, cls", [(MATE, MateConfig), (MIL, MilConfig)])
def test_the_history_table_accounts_for_every_field(fam, cls):
    """Today's fields are exactly the oldest format's keys with the table's rows applied, and every added
    key's value for older files is a valid value of its field."""
    assert keys_at(fam) == {f.name for f in dataclasses.fields(cls)}
    assert current_format() == max(row.format for row in history.HISTORY)
    variant = "mil" if fam == MIL else "fast"
    for row in history.HISTORY:
        assert row.change in ("added", "removed", "renamed") and row.why, row
        if row.family == fam and row.change == "added":
            config_for_variant(variant, **{row.key: row.value})  # the value older files get is a valid one


def test_a_field_without_its_history_row_is_caught(monkeypatch):
    """Forgetting the row: the table no longer accounts for the fields (the test above goes red)."""
    extended = extended_config(monkeypatch, with_row=False)
    assert keys_at(MATE) != {f.name for f in dataclasses.fields(extended)}
    assert keys_at(MATE) ^ {f.name for f in dataclasses.fields(extended)} == {NEW}
