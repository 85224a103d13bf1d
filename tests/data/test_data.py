import numpy as np
import pytest
from PIL import Image

from dnnjpeg.data import discover, imagenet_wnids, split_of


def _img(p, seed=0):
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), seed, np.uint8)).save(p)


def test_imagefolder_custom_and_wnid_classes(tmp_path):
    for c in ("zebra", "apple"):
        for i in range(3):
            _img(tmp_path / "a" / c / f"{i}.png")
    ds = discover(tmp_path / "a")
    assert ds.layout == "imagefolder" and ds.classes == ("apple", "zebra") and ds.label_space == "custom"
    assert {r.path.parent.name: r.label for r in ds.records} == {"apple": 0, "zebra": 1}
    wn = imagenet_wnids()
    for w in (wn[5], wn[999]):
        _img(tmp_path / "b" / w / "x.JPEG")
    ds = discover(tmp_path / "b")
    assert ds.label_space == "imagenet" and sorted(r.label for r in ds.records) == [5, 999]


def test_flat_wnid_folder(imagenet_dir):
    ds = discover(imagenet_dir)
    assert ds.layout == "wnid" and len(ds) == 1000
    by_name = {r.path.name: r.label for r in ds.records}
    assert by_name["n01440764_tench.JPEG"] == 0
    assert by_name["n01443537_goldfish.JPEG"] == 1
    assert sorted(by_name.values()) == list(range(1000))


def test_csv_labels_and_unlabeled(tmp_path):
    for n in ("a.png", "b.png", "c.png"):
        _img(tmp_path / "imgs" / n)
    (tmp_path / "l.csv").write_text("path,label\nimgs/b.png,cat\nimgs/a.png,dog\nimgs/c.png,cat\n")
    ds = discover(tmp_path, tmp_path / "l.csv")
    assert ds.layout == "csv" and ds.classes == ("cat", "dog")
    assert [(r.path.name, r.label) for r in ds.records] == [("a.png", 1), ("b.png", 0), ("c.png", 0)]
    (tmp_path / "n.csv").write_text("path,label\nimgs/a.png,3\nimgs/b.png,0\n")
    assert [r.label for r in discover(tmp_path, tmp_path / "n.csv").records] == [3, 0]
    (tmp_path / "bad.csv").write_text("file,cls\nx,1\n")
    with pytest.raises(ValueError, match="bad.csv"):
        discover(tmp_path, tmp_path / "bad.csv")
    ds = discover(tmp_path / "imgs")
    assert ds.layout == "unlabeled" and not ds.labeled and all(r.label is None for r in ds.records)


def test_split_is_stable_disjoint_and_balanced(imagenet_dir):
    ds = discover(imagenet_dir)
    d, e = ds.subset("design"), ds.subset("eval")
    names_d, names_e = {r.path.name for r in d.records}, {r.path.name for r in e.records}
    assert not names_d & names_e and len(d) + len(e) == 1000
    assert 430 < len(d) < 570  # a fair coin over 1000 names
    # depends on the name only: folders do not matter
    assert split_of("/x/y/n01440764_tench.JPEG") == split_of("n01440764_tench.JPEG")
    assert [split_of(r.path.name) for r in ds.records] == [r.split for r in ds.records]
    assert len(ds.subset("eval", limit=7)) == 7
    with pytest.raises(ValueError):
        ds.subset("train")
