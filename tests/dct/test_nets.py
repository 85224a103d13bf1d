"""Coefficient-plane datasets and frequency networks (dnnjpeg.dct.nets, train --input dct)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from dnnjpeg.dct.nets import FrequencyResNet, dct_augment, load_dct_folder, lowest_frequencies, stack_planes
from dnnjpeg.dct.planes import hflip, load_planes
from dnnjpeg.nn.train import TrainConfig, train_classifier


def _tree(root, n=6, size=32, seed=0):
    """Two classes a network can tell apart only by colour: reddish and bluish noise."""
    rng = np.random.default_rng(seed)
    for k, tint in enumerate(((60, 0, 0), (0, 0, 60))):
        d = root / f"c{k}"
        d.mkdir(parents=True)
        for i in range(n):
            img = np.clip(rng.normal(128, 40, (size, size, 3)) + tint, 0, 255).astype(np.uint8)
            b = io.BytesIO()
            Image.fromarray(img).save(b, "JPEG", quality=75)
            (d / f"{i}.jpg").write_bytes(b.getvalue())


def test_a_folder_loads_as_stacked_planes_and_names_bad_files(tmp_path):
    _tree(tmp_path / "t")
    x, y, classes = load_dct_folder(tmp_path / "t")
    assert (
        x.shape == (12, 192, 4, 4)
        and x.dtype == np.float32
        and classes == ["c0", "c1"]
        and y.tolist() == [0] * 6 + [1] * 6
    )
    pl = load_planes(tmp_path / "t" / "c1" / "2.jpg")
    assert np.array_equal(x[8], stack_planes(pl.y, pl.cbcr))
    assert np.array_equal(x[8, 64:, 2:, :2], np.repeat(np.repeat(pl.cbcr[:, 1:, :1], 2, 1), 2, 2))
    (tmp_path / "t" / "c0" / "bad.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="bad.jpg"):
        load_dct_folder(tmp_path / "t")


def test_augmentation_flips_and_shifts_by_whole_blocks():
    x = torch.randn(64, 192, 4, 4)
    out = dct_augment(x, torch.Generator().manual_seed(0))
    fy, fc = hflip(x[:, :64], x[:, 64:])
    flipped = torch.cat([fy, fc], 1)
    for i in range(64):
        o = out[i]
        ok = False
        for cand in (x[i], flipped[i]):  # some shift of the unflipped or the flipped planes
            p = torch.nn.functional.pad(cand, (1, 1, 1, 1))
            ok |= any(torch.equal(o, p[:, a : a + 4, b : b + 4]) for a in range(3) for b in range(3))
        assert ok


def test_a_frequency_network_learns_and_keeps_only_its_channels(tmp_path):
    _tree(tmp_path / "tr", n=24, seed=1)
    _tree(tmp_path / "te", n=8, seed=2)
    tr, te = load_dct_folder(tmp_path / "tr")[:2], load_dct_folder(tmp_path / "te")[:2]
    res = train_classifier(tr, te, TrainConfig(epochs=4, batch_size=16, lr=0.05, input="dct", dct_width=8,
                                               frequencies=4), keep_model=True)  # fmt: skip
    assert res["test_top1"] >= 90.0  # colour sits in the chroma DC, which the 4+1+1 kept channels hold
    net = res["model"]
    assert net.keep.tolist() == lowest_frequencies(4, 1) == [0, 1, 8, 16, 64, 128]
    x = torch.from_numpy(te[0][:2])
    z = x.clone()
    z[:, [c for c in range(192) if c not in net.keep.tolist()]] = 1e3  # channels it does not keep
    assert torch.equal(net(x), net(z))
    with pytest.raises(ValueError, match="indices"):
        FrequencyResNet(channels=[200])
    with pytest.raises(ValueError, match="input must be pixels for the JPEG layer"):
        train_classifier(tr, te, TrainConfig(epochs=1, input="dct", jpeg_layer=True))
    with pytest.raises(ValueError, match="input must be one of dct, pixels"):
        train_classifier(tr, te, TrainConfig(epochs=1, input="wavelets"))
