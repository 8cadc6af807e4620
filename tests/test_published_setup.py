"""The published setup reproduced: the seed's makelist and StratifiedKFold lines, typed literally on a
UCF-Crime-shaped feature folder, give the official split and the published folds (data/published/)."""
from pathlib import Path

import numpy as np
import pytest

from scripts.data.manifest import read_manifest
from tests.conftest import PUBLISHED, SHARED_DATA, shell


def names(path: Path) -> list[str]:
    return [Path(line.split()[0]).stem for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def ucf_folder(tmp_path_factory) -> Path:
    """Every video of the official split as a tiny feature file under data/ucf_x3d/<Class>/ (as the
    shared features are laid out), in a fresh working folder."""
    work = tmp_path_factory.mktemp("work")
    for split in ("Anomaly_Train.txt", "Anomaly_Test.txt"):
        for line in (SHARED_DATA / split).read_text().split():
            folder, name = line.split("/")
            cls = "Normal" if "Normal" in folder else folder
            path = work / "data" / "ucf_x3d" / cls / Path(name).with_suffix(".npy")
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.zeros((4, 2, 1, 1), np.float16))
    return work


def test_seed_lines_give_the_official_split_and_the_published_folds(ucf_folder, monkeypatch):
    monkeypatch.chdir(ucf_folder)
    done = shell("python makelist.py --features_dir data/ucf_x3d/ --out_train ucf_x3d_train.txt "
                 "--out_test ucf_x3d_test.txt", ucf_folder)
    code, out = done.returncode, done.stdout
    assert code == 0 and "split: UCF-Crime's official split" in out
    train, test = read_manifest("ucf_x3d_train.txt"), read_manifest("ucf_x3d_test.txt")
    assert (len(train), len(test)) == (1610, 290)
    assert (sum(e.label for e in train), sum(e.label for e in test)) == (810, 140)
    # the published manifests, line for line (by video): the order the folds depend on
    assert names(Path("ucf_x3d_train.txt")) == names(PUBLISHED / "ucf_x3d_train.txt")
    assert names(Path("ucf_x3d_test.txt")) == names(PUBLISHED / "ucf_x3d_test.txt")

    done = shell("python StratifiedKFold.py --rgb_list ucf_x3d_train.txt --k 5 --out_dir data/manifests/",
                 ucf_folder)
    code, out = done.returncode, done.stdout
    assert code == 0 and "test list: ucf_x3d_test.txt (the test manifest of ucf_x3d_train.txt" in out
    assert out.count("Val -> Normal: 160, Abnormal: 162") == 5
    for i in range(5):
        published = PUBLISHED / "folds" / f"fold_{i + 1}_val.txt"
        assert set(names(Path(f"data/manifests/fold{i}_val.txt"))) == set(names(published)), i
        assert set(names(Path(f"data/manifests/fold{i}_train.txt"))) == \
            set(names(PUBLISHED / "folds" / f"fold_{i + 1}_train.txt")), i
        assert names(Path(f"data/manifests/fold{i}_test.txt")) == names(Path("ucf_x3d_test.txt"))

    done = shell("python StratifiedKFold_verify.py --rgb_list ucf_x3d_train.txt --folds_dir data/manifests/",
                 ucf_folder)
    code, out = done.returncode, done.stdout
    assert code == 0 and "OK: 5 folds" in out and "no test video in any train/val" in out


def test_class_rule_and_other_seed_differ_from_the_published_folds(ucf_folder, monkeypatch):
    monkeypatch.chdir(ucf_folder)
    shell("python makelist.py --features_dir data/ucf_x3d/ --out_train l/train.txt --out_test l/test.txt",
          ucf_folder)
    published = set(names(PUBLISHED / "folds" / "fold_1_val.txt"))
    for flags in ("--stratify class", "--seed 0"):
        assert shell(f"python StratifiedKFold.py --rgb_list l/train.txt --out_dir l/{flags[2:6]} {flags}",
                     ucf_folder).returncode == 0
        val = set(names(Path(f"l/{flags[2:6]}/fold0_val.txt")))
        assert len(val) == 322 and len(val & published) < 161, flags  # about a fifth shared by chance
