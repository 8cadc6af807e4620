"""scripts/models/checkpoint.py: a checkpoint says what it is (format, full model config), and a config with a
missing or unknown key is refused in one line naming the file and the key (through test.py), never
filled with today's default; format-1 checkpoints migrate by the one documented rule."""
import dataclasses

import pytest
import torch

from scripts.model import model_from_checkpoint
from scripts.models.checkpoint import load_checkpoint, save_checkpoint
from scripts.core.errors import MateError
from scripts.models.history import OLDEST, current_format, family, keys_at
from scripts.model import MilConfig, build_model, config_fields, config_for_variant
from tests.conftest import PUBLISHED, run_script

FEATURE = {"shape": [192, 4, 3, 3], "sequence": False, "crop_mode": "mean", "num_segments": None,
           "frames_per_snippet": 16, "extraction": {"source": "none", "settings": None}}


def write_checkpoint(path, config: dict, weights: dict, *, version="current") -> None:
    state = {"model": weights, "model_config": config, "options": {}, "feature": dict(FEATURE), "epoch": 1,
             "metrics": {"val_roc_auc": 0.5, "val_pr_auc": 0.5, "loss": 0.7}}
    if version is not None:
        state["format"] = current_format() if version == "current" else version
    save_checkpoint(path, state)


def model_and_config(variant: str, **overrides) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    cfg = config_for_variant(variant, **overrides)
    return build_model(cfg).eval(), dataclasses.asdict(cfg)


def refused_by_test_py(tmp_path, checkpoint, *needles: str) -> str:
    """test.py with `checkpoint`: exit code 2, one stderr line naming the file and `needles`, nothing written."""
    proc = run_script("test.py", "--test_list", tmp_path / "none.txt", "--checkpoint", checkpoint,
                      "--out_dir", tmp_path / "out", "--no_progress")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in (str(checkpoint), *needles):
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "out").exists()
    return lines[0]


# --- refused: a missing or unknown key, a newer format --------------------------------------------

@pytest.mark.parametrize("variant, key", [("fast", "input_norm"), ("base", "video_logit"), ("mil", "hidden"),
                                          ("paper_base", "tcc_mode")])
def test_a_missing_config_key_is_refused_in_one_line(tmp_path, variant, key):
    model, config = model_and_config(variant)
    del config[key]
    path = tmp_path / "run" / "checkpoint_best.pth"
    write_checkpoint(path, config, model.state_dict())
    line = refused_by_test_py(tmp_path, path, f"model config lacks '{key}'", "older MATE")
    assert line == (f"error: {path}: model config lacks '{key}' (made by an older MATE); retrain with this "
                    "version, or score it with the MATE version that made it")


@pytest.mark.parametrize("variant, key", [("fast", "temperature"), ("mil", "use_motion_map"),
                                          ("mil", "motion_window")])
def test_an_unknown_config_key_is_refused_in_one_line(tmp_path, variant, key):
    model, config = model_and_config(variant)
    config[key] = 1
    path = tmp_path / "run" / "checkpoint_best.pth"
    write_checkpoint(path, config, model.state_dict())
    refused_by_test_py(tmp_path, path, f"unknown key(s) '{key}' for variant {variant}")


def test_a_newer_format_a_bad_variant_and_a_bad_value_are_refused(tmp_path):
    model, config = model_and_config("fast")
    write_checkpoint(tmp_path / "new.pth", config, model.state_dict(), version=current_format() + 1)
    refused_by_test_py(tmp_path, tmp_path / "new.pth", f"checkpoint format {current_format() + 1} is not one this MATE reads")
    write_checkpoint(tmp_path / "huge.pth", {**config, "variant": "huge"}, model.state_dict())
    refused_by_test_py(tmp_path, tmp_path / "huge.pth", "variant 'huge'")
    write_checkpoint(tmp_path / "heads.pth", {**config, "num_heads": 3}, model.state_dict())
    refused_by_test_py(tmp_path, tmp_path / "heads.pth", "num_heads must be a divisor of dim = 8")


# --- accepted: what training writes, format 1 by its rule, the published state dict ---------------

@pytest.mark.parametrize("variant", ["fast", "mil", "paper_fast"])
def test_full_config_round_trip(tmp_path, variant):
    model, config = model_and_config(variant)
    write_checkpoint(tmp_path / "c.pth", config, model.state_dict())
    state = load_checkpoint(tmp_path / "c.pth")
    assert state["format"] == current_format() and tuple(state["model_config"]) == config_fields(variant)
    rebuilt, cfg = model_from_checkpoint(state, source=tmp_path / "c.pth")
    assert dataclasses.asdict(cfg) == config
    x = torch.rand(2, 192, 4, 3, 3)
    with torch.no_grad():
        assert torch.equal(rebuilt(x).video_logit, model(x).video_logit)


def test_a_checkpoint_keeps_the_tcc_it_was_trained_with(tmp_path):
    """fast and base default to the published TCC (multiscale_gating) again; a checkpoint made while the
    default was plain recorded tcc_mode "plain" and still loads as plain, never as today's default."""
    assert config_for_variant("fast").tcc_mode == config_for_variant("base").tcc_mode == "multiscale_gating"
    for variant in ("fast", "base"):
        model, config = model_and_config(variant, tcc_mode="plain")
        write_checkpoint(tmp_path / f"{variant}.pth", config, model.state_dict())
        rebuilt, cfg = model_from_checkpoint(load_checkpoint(tmp_path / f"{variant}.pth"), source=tmp_path)
        assert cfg.tcc_mode == "plain" and rebuilt.blocks[0].tcc.scales == () and rebuilt.blocks[0].tcc.gate is None
        x = torch.rand(2, 192, 4, 3, 3)
        with torch.no_grad():
            assert torch.equal(rebuilt(x).video_logit, model(x).video_logit)


FORMAT_1 = OLDEST["mate"]  # the keys of a format-1 file (scripts/models/history.py)


def format1_config(cfg: dict, **mil_fields) -> dict:
    """What MATE wrote before the format key: a MateConfig for every variant, mil_hidden and mil_embed
    included (the MATE fields of a mil config at the values the old `mil` variant set)."""
    old = {k: v for k, v in dataclasses.asdict(config_for_variant("fast")).items() if k in FORMAT_1}
    old.update(use_motion_map=False, use_attention=False, use_tcc=False, use_motion_pooling=False)
    if cfg["variant"] != "mil":
        old = {k: v for k, v in cfg.items() if k in FORMAT_1}
    old.update(variant=cfg["variant"], in_channels=cfg["in_channels"], dropout=cfg["dropout"],
               **{"mil_hidden": 512, "mil_embed": 32, **mil_fields})
    return old


def test_format1_checkpoints_migrate_by_the_documented_rule(tmp_path):
    x = torch.rand(2, 192, 4, 3, 3)
    for variant in ("fast", "paper_base"):  # mil_hidden and mil_embed are dropped
        model, config = model_and_config(variant)
        write_checkpoint(tmp_path / f"{variant}.pth", format1_config(config), model.state_dict(), version=None)
        state = load_checkpoint(tmp_path / f"{variant}.pth")
        assert state["model_config"] == config and state["migrated_from_format"] == 1
        rebuilt, _ = model_from_checkpoint(state)
        with torch.no_grad():
            assert torch.equal(rebuilt(x).video_logit, model(x).video_logit)
    # mil: in_channels and dropout kept, mil_hidden / mil_embed renamed, the ignored MATE keys dropped
    model, config = model_and_config("mil", hidden=64, embed=8, dropout=0.1)
    old = format1_config(config, mil_hidden=64, mil_embed=8)
    write_checkpoint(tmp_path / "mil.pth", old, model.state_dict(), version=None)
    rebuilt, cfg = model_from_checkpoint(load_checkpoint(tmp_path / "mil.pth"))
    assert cfg == MilConfig(in_channels=192, hidden=64, embed=8, dropout=0.1)
    with torch.no_grad():
        assert torch.equal(rebuilt(x).video_logit, model(x).video_logit)
    # an older config still lacks what it lacks: refused, not filled in
    old = format1_config(model_and_config("fast")[1])
    del old["input_norm"]
    write_checkpoint(tmp_path / "older.pth", old, model_and_config("fast")[0].state_dict(), version=None)
    refused_by_test_py(tmp_path, tmp_path / "older.pth", "model config lacks 'input_norm' (made by an older MATE)")


@pytest.mark.parametrize("version", range(2, current_format()))
def test_later_formats_gain_their_added_keys(tmp_path, version):
    """A file of format 2 or later holds the keys of its format (the history table's); loading gives each key
    added since the value of its row (format 3: use_difference_features True, every such model used the
    differences), so the model rebuilds as it was."""
    x = torch.rand(2, 192, 4, 3, 3)
    for variant in ("fast", "paper_fast", "mil"):
        model, config = model_and_config(variant)
        old = {k: v for k, v in config.items() if k in keys_at(family(variant), version)}
        assert len(old) < len(config) or variant == "mil"
        write_checkpoint(tmp_path / f"{variant}.pth", old, model.state_dict(), version=version)
        state = load_checkpoint(tmp_path / f"{variant}.pth")
        assert state["format"] == current_format() and state["migrated_from_format"] == version
        assert state["model_config"] == config  # True added for MATE and paper, nothing for mil
        rebuilt, _ = model_from_checkpoint(state)
        with torch.no_grad():
            assert torch.equal(rebuilt(x).video_logit, model(x).video_logit)


def test_published_state_dict_gets_a_full_config():
    state = load_checkpoint(PUBLISHED / "MATE_base.pkl")
    assert state["format"] == current_format() and tuple(state["model_config"]) == config_fields("paper_base")
    assert state["model_config"]["tcc_bottleneck"] == 32 and state["model_config"]["dim"] == 32


def test_load_checkpoint_names_the_file_in_every_fault(tmp_path):
    model, config = model_and_config("fast")
    write_checkpoint(tmp_path / "list.pth", config, model.state_dict())
    state = torch.load(tmp_path / "list.pth", weights_only=True)
    state["model_config"] = list(config.items())
    torch.save(state, tmp_path / "list.pth")
    with pytest.raises(MateError, match=r"list.pth: model config is not a mapping"):
        load_checkpoint(tmp_path / "list.pth")


@pytest.mark.parametrize("content, fault", [
    (b"hello world\nsecond line\n", "a text file starting 'hello world'"),
    (b"", "an empty file"),
    (b"\x00\x01\x02binary junk", "unknown binary content starting 00010262696e6172"),
])
def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path, content, fault):
    """A text file given as --checkpoint used to end in torch's KeyError traceback and weights_only advice."""
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(MateError) as err:
        load_checkpoint(path)
    assert str(err.value).startswith(f"{path}: not a PyTorch checkpoint ({fault})") and "weights_only" not in str(err.value)
    proc = run_script("test.py", "--test_list", "x.txt", "--checkpoint", path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    (tmp_path / "damaged.pth").write_bytes(b"\x80\x02}q\x00X\x05")  # a pickle that breaks off
    with pytest.raises(MateError, match="damaged.pth: not a readable MATE checkpoint"):
        load_checkpoint(tmp_path / "damaged.pth")
