"""The rate model: monotone in the steps, close to real file sizes on held-out images."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from dnnjpeg.codec import ANNEX_K_CHROMA, ANNEX_K_LUMA, QuantTables
from dnnjpeg.data import discover
from dnnjpeg.nn import DiffJPEG, RateModel
from dnnjpeg.nn.rate import measure_rate_pairs, rate_features, smape


def _eval_crops(imagenet_dir, n):
    recs = discover(imagenet_dir).subset("eval", n).records  # the packaged weights were fitted on design images
    return [np.asarray(Image.open(r.path).convert("RGB"))[:160, :200].copy() for r in recs]


def test_rate_model_is_monotone_in_the_step_on_real_images(imagenet_dir):
    ims = _eval_crops(imagenet_dir, 4)
    rate = RateModel.default("4:2:0")
    scales = [0.3, 0.5, 0.8, 1.0, 1.5, 2.5, 4.0]
    for im in ims:
        x = torch.from_numpy(im).permute(2, 0, 1)[None].float()
        for mode in ("exact", "ste"):
            est = []
            for s in scales:
                t = QuantTables(np.clip(ANNEX_K_LUMA * s, 1, 255).round(), np.clip(ANNEX_K_CHROMA * s, 1, 255).round())
                _, enc = DiffJPEG("4:2:0", mode)(x, t, return_levels=True)
                est.append(float(rate(enc.continuous())))
            assert all(a >= b for a, b in zip(est, est[1:])), (mode, est)
            assert est[0] > 1.5 * est[-1]
    # and entry by entry: raising one step never raises the estimate
    x = torch.from_numpy(ims[0]).permute(2, 0, 1)[None].float()
    base = torch.as_tensor(QuantTables.standard(50).as_array()).float()
    _, enc = DiffJPEG("4:2:0", "ste")(x, base, return_levels=True)
    b0 = float(rate(enc.continuous()))
    for k, i, j in [(0, 0, 0), (0, 3, 4), (1, 0, 1), (1, 7, 7)]:
        t = base.clone()
        t[k, i, j] *= 2
        _, enc = DiffJPEG("4:2:0", "ste")(x, t, return_levels=True)
        assert float(rate(enc.continuous())) <= b0 + 1e-3


def test_packaged_rate_model_predicts_real_sizes_on_held_out_images(imagenet_dir):
    ims = _eval_crops(imagenet_dir, 6)
    tables = [QuantTables.standard(q) for q in (10, 30, 50, 75, 90)]
    for ss in ("4:2:0", "4:4:4"):
        f, bits = measure_rate_pairs(ims, tables, ss)
        pred = RateModel.default(ss).predict(f)
        e = smape(pred, bits)
        assert e.mean() < 8.0, (ss, e.mean())
        # it tracks the ordering of sizes too (not just their scale)
        assert np.corrcoef(pred, bits)[0, 1] > 0.97


def test_fit_recovers_weights_that_generated_sizes():
    rng = np.random.default_rng(0)
    from dnnjpeg.nn.rate import FEATURE_NAMES

    f = rng.uniform(1, 100, (300, len(FEATURE_NAMES)))
    w = rng.uniform(0, 3, len(FEATURE_NAMES))
    w[::3] = 0
    m = RateModel.fit(f, f @ w)
    assert np.allclose(m.weights.double().numpy(), w, atol=1e-3)
    assert (m.weights >= 0).all()


def test_features_count_nonzero_levels():
    from dnnjpeg.nn.codec import Encoded

    ly = torch.zeros(1, 1, 1, 2, 64)
    ly[0, 0, 0, 0, 1] = 3.0  # one non-zero AC in band 1
    ly[0, 0, 0, 1, 63] = -1.0  # one in band 3
    f = rate_features(Encoded(ly, torch.zeros(1, 2, 1, 1, 64), torch.tensor([128.0])))[0]
    from dnnjpeg.nn.rate import FEATURE_NAMES

    v = dict(zip(FEATURE_NAMES, f.tolist()))
    leak = float(torch.sigmoid(torch.tensor(-5.0)))  # a zero level's soft count: sigmoid(β (0 − ½))
    assert abs(v["y_nz_b1"] - (1 + 9 * leak)) < 0.01 and abs(v["y_nz_b3"] - (1 + 85 * leak)) < 0.01
    assert abs(v["y_nz_b2"] - 30 * leak) < 1e-3
    assert abs(v["y_mag_b1"] - 2) < 1e-6 and 1.9 < v["y_eob"] <= 2 and v["y_blocks"] == 2 and v["c_blocks"] == 2
