"""AIx699/MATE's flag names (scripts/evaluation/upstream_flags.py): its README's train and test commands run as
written (epochs aside) on the official-named synthetic set, every alias resolves to its option, and what
has no meaning here is refused in one line."""
import json
import shutil
from pathlib import Path

import pytest

from scripts.core.errors import MateError
from scripts.option import parse_args
from scripts.evaluation.upstream_flags import resolve_upstream_flags
from tests.conftest import load_script, run_script


def parsed(script: str, *argv: str):
    module = load_script(f"{script}.py")
    parser = module.get_args_parser()
    args = parse_args(parser, list(argv)) if script == "main" else parser.parse_args(list(argv))
    return args, resolve_upstream_flags(args, parser, script)


def test_every_main_alias_resolves_to_its_option():
    args, notes = parsed("main", "--rgb_list", "a.txt", "--test_rgb_list", "b.txt", "--model_name", "motion_fast",
                         "--model_arch", "fast", "--warmup", "3", "--dropout_rate", "0.4", "--comment", "try 1")
    assert (args.train_list, args.val_list, args.exp_name) == (Path("a.txt"), Path("b.txt"), "motion_fast")
    assert (args.model_variant, args.warmup_epochs, args.dropout, args.comment) == ("paper_fast", 3.0, 0.4, "try 1")
    assert not [k for k in vars(args) if k.startswith("upstream_")]
    assert any("--model_variant paper_fast" in n and "--model_variant fast" in n for n in notes)
    assert any("test-set selection" in n for n in notes)
    for arch, variant in (("tiny", "paper_fast"), ("base", "paper_base")):
        assert parsed("main", "--model_arch", arch)[0].model_variant == variant
    args, notes = parsed("main", "--use_kfold", "--fold_id", "2")
    assert (args.train_list, args.val_list, args.folds_dir) == (
        Path("data/manifests/fold2_train.txt"), Path("data/manifests/fold2_val.txt"), None)
    args, _ = parsed("main", "--use_kfold", "--folds_dir", "lists")
    assert args.train_list == Path("lists/fold0_train.txt")
    args, _ = parsed("test", "--test_rgb_list", "t.txt", "--model_name", "motion_fast", "--model_arch", "base")
    assert (args.test_list, args.upstream_run, args.upstream_arch) == (Path("t.txt"), "motion_fast", "paper_base")
    help_text = " ".join(load_script("main.py").get_args_parser().format_help().split())
    assert "AIx699/MATE names" in help_text and "--rgb_list" in help_text and "--attn_dropout_rate" in help_text


@pytest.mark.parametrize("argv, match", [
    (["--attn_dropout_rate", "0.1"], "--attn_dropout_rate: AIx699/MATE reads it nowhere"),
    (["--model_arch", "fast", "--model_variant", "base"], "--model_arch fast and --model_variant base contradict"),
    (["--rgb_list", "a.txt", "--train_list", "b.txt"], "--rgb_list a.txt and --train_list b.txt contradict"),
    (["--fold_id", "1"], "--fold_id needs --use_kfold"),
    (["--use_kfold", "--train_list", "a.txt"], "--use_kfold picks the fold's lists itself"),
])
def test_what_has_no_meaning_or_contradicts_is_one_line(argv, match):
    with pytest.raises(MateError, match=match):
        parsed("main", *argv)


@pytest.mark.slow  # 1,900 videos and a paper_fast training: 12 s, make test-slow beside the seed's own commands
def test_upstream_readme_commands_run_as_written(tmp_path, monkeypatch):
    """The official-named synthetic set (1,900 videos, 4 channels), the seed's makelist line, then
    upstream's README: `main.py --train_list train.txt --val_list test.txt ... --model_arch fast --model_name
    motion_fast` and `test.py --model_arch fast --model_name motion_fast`."""
    monkeypatch.chdir(tmp_path)

    def cli(script, *argv):
        done = run_script(script, *argv, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    cli("makelist.py", "--synthetic", "data/ucf_x3d", "--names", "official", "--feature_dim", "4")
    cli("makelist.py", "--features_dir", "data/ucf_x3d/features/", "--out_train", "ucf_x3d_train.txt",
        "--out_test", "ucf_x3d_test.txt")
    shutil.copy("ucf_x3d_train.txt", "train.txt")
    shutil.copy("ucf_x3d_test.txt", "test.txt")
    done = cli("main.py", "--train_list", "train.txt", "--val_list", "test.txt", "--batch_size", "16", "--lr", "0.002",
               "--max_epoch", "1", "--model_arch", "fast", "--model_name", "motion_fast", "--no_progress", "--no_plots")
    assert "--model_variant paper_fast" in done.stdout
    config = json.loads(Path("runs/motion_fast/config.json").read_text())
    assert config["options"]["model_variant"] == "paper_fast" and "upstream_model_arch" not in config["options"]
    missing = run_script("test.py", "--model_arch", "fast", cwd=tmp_path)
    assert missing.returncode == 2 and "runs of paper_fast here: motion_fast" in missing.stderr
    done = cli("test.py", "--model_arch", "fast", "--model_name", "motion_fast", "--no_progress", "--no_plots")
    metrics = json.loads(Path("runs/motion_fast/test_metrics.json").read_text())
    assert metrics["n_videos"] == 290 and metrics["test_list"].endswith("ucf_x3d_test.txt")
    wrong = run_script("test.py", "--model_arch", "base", "--model_name", "motion_fast", cwd=tmp_path)
    assert wrong.returncode == 2 and "trained as --model_variant paper_fast, not paper_base" in wrong.stderr
