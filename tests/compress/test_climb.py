"""--choose climb over many images at once writes the files the image-by-image climb writes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image


@pytest.mark.parametrize("window", [2, 64])
def test_batched_climb_equals_the_image_by_image_climb(tmp_path, imagenet_dir, lite0, monkeypatch, window):
    import dnnjpeg.compress.climb as climb_mod
    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.engine import LocalEngine
    from dnnjpeg.select import select_encode

    monkeypatch.setattr(climb_mod, "WINDOW", window)
    src = tmp_path / "src"
    src.mkdir()
    files = sorted(imagenet_dir.glob("*.JPEG"))[:5]
    for f in files:
        shutil.copy(f, src / f.name)
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # a failure in the middle of a window
    ch = make_chooser(family=["standard:10,20,40,60,80,95"], model=lite0, lam=0.004, search="climb")
    calls = []
    monkeypatch.setattr(climb_mod, "_climb_window", _counting(climb_mod._climb_window, calls))
    rep = compress_tree(src, tmp_path / "out", ch, engine=LocalEngine(2), batch_size=8, strip_metadata=True,
                        allow_larger=True)  # fmt: skip
    assert rep.written == 5 and len(rep.failures) == 1 and calls  # the batched path ran
    members = []
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        sel = select_encode(img, ch.family.points, lite0, 0.004, search="climb")
        assert (tmp_path / "out" / f.name).read_bytes() == sel.data, f.name
        members.append(sel.index)
    assert rep.members == {k: members.count(k) for k in set(members)}


def _counting(fn, calls):
    def wrapped(*a, **k):
        calls.append(1)
        yield from fn(*a, **k)

    return wrapped


def test_a_tree_runs_the_network_fast_only_where_it_pays_back(tmp_path, imagenet_dir, lite0, monkeypatch):
    import dnnjpeg.models.fast as fast
    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.models import Model

    calls = []
    monkeypatch.setattr(Model, "compiled", lambda self, b: calls.append(("compile", b)) or self)
    monkeypatch.setattr(fast, "onnx_model", lambda m: calls.append(("onnx", m.name)) or m)
    src = tmp_path / "src"
    src.mkdir()
    for f in sorted(imagenet_dir.glob("*.JPEG"))[:2]:
        shutil.copy(f, src / f.name)
    ch = make_chooser(family=["standard:20,60"], model=lite0, lam=0.004, search="climb")
    compress_tree(src, tmp_path / "a", ch, batch_size=8)
    assert calls == []  # 2 images: neither export nor compiling would pay back
    monkeypatch.setattr(fast, "ONNX_FROM", 2)
    rep = compress_tree(src, tmp_path / "b", ch, batch_size=8)
    assert calls == [("onnx", lite0.name)] and rep.written == 2
