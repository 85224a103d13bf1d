import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dnnjpeg.codec import QuantTables, encode
from dnnjpeg.design.fisher import (
    STEPS,
    FisherStats,
    fisher_lambda_for_bpp,
    fisher_statistics,
    lagrangian_tables,
    level_entropy,
    rd_curves,
)
from dnnjpeg.evaluate.spec import parse_codec

from ..evaluate.tiny import tiny_model

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "imagenet-sample"


def test_level_entropy_hand_computed():
    lv = np.array([[0, 0, 5], [0, 1, 6], [0, 0, 7], [0, 1, 8]])
    assert level_entropy(lv) == pytest.approx([0.0, 1.0, 2.0])


def _laplace_coefs(rng, n_img=6, blocks=16, scale=None):
    scale = np.geomspace(60, 2, 64) if scale is None else scale
    return rng.laplace(0, scale, (n_img * blocks, 64)), blocks


def test_rd_curves_bounds():
    rng = np.random.default_rng(0)
    c, b = _laplace_coefs(rng)
    c[:, 5] = np.rint(c[:, 5])
    c[:, 9] = 0.0
    d, r = rd_curves(c, b)
    assert d.shape == r.shape == (255, 64)
    assert np.all(d <= (STEPS[:, None] ** 2) / 4 + 1e-6)  # rounding error is at most half a step
    assert d[0, 5] == pytest.approx(0.0, abs=1e-8)  # integer coefficients, step 1: lossless
    assert np.all(r[:, 9] == 0) and np.all(d[:, 9] == 0)  # a frequency that is always zero costs nothing
    assert d[-1, 63] == pytest.approx(np.mean(c[:, 63].astype(np.float32) ** 2), rel=1e-4)  # everything quantized to 0
    assert r[0, 1] > r[50, 1] > r[-1, 1] >= 0  # coarser steps, fewer bits
    with pytest.raises(ValueError, match="coefficients"):
        rd_curves(c[:-1], b)


def test_rd_curves_with_images_of_different_sizes():
    rng = np.random.default_rng(2)
    c, b = _laplace_coefs(rng)
    d1, r1 = rd_curves(c, b)
    d2, r2 = rd_curves(c, [b] * (len(c) // b))
    assert np.array_equal(d1, d2) and np.array_equal(r1, r2)  # equal counts: the same as one count
    # DC is coded against the previous block of the same image only: two images of 3 and 2 blocks
    dc = np.zeros((5, 64))
    dc[:, 0] = [10, 10, 10, 50, 50]
    _, r = rd_curves(dc, [3, 2])
    assert r[0, 0] == pytest.approx(level_entropy(np.array([[10], [0], [0], [50], [0]]))[0])
    with pytest.raises(ValueError, match="block counts"):
        rd_curves(dc, [3, 3])


def _stats(rng, w_luma=None):
    cy, b = _laplace_coefs(rng)
    cb, _ = _laplace_coefs(rng, scale=np.geomspace(20, 1, 64))
    cr, _ = _laplace_coefs(rng, scale=np.geomspace(25, 1, 64))
    dy, ry = rd_curves(cy, b)
    dcb, rcb = rd_curves(cb, b)
    dcr, rcr = rd_curves(cr, b)
    w = np.ones(64) if w_luma is None else w_luma
    return FisherStats(w, np.full((2, 64), 2.0), dy, ry, np.stack([dcb, dcr]), np.stack([rcb, rcr]), b, b, b * 64)


def test_lagrangian_tables_trade_rate_for_weighted_distortion():
    st = _stats(np.random.default_rng(1))
    lams = np.geomspace(1e-2, 1e3, 12)
    k = np.arange(64)

    def dist(t):
        return (0.5 * st.w_luma * st.d_luma[t.luma.ravel() - 1, k]).sum() + (
            st.w_chroma * st.d_chroma[:, t.chroma.ravel() - 1, k]
        ).sum() / 2

    tabs = [lagrangian_tables(st, lam) for lam in lams]
    bpp = [st.estimated_bpp(t) for t in tabs]
    dd = [dist(t) for t in tabs]
    assert all(a >= b - 1e-9 for a, b in zip(bpp, bpp[1:])) and bpp[0] > 2 * bpp[-1]
    assert all(a <= b + 1e-9 for a, b in zip(dd, dd[1:]))
    assert all(1 <= t.luma.min() and t.chroma.max() <= 255 for t in tabs)
    # the network caring 100× more about one frequency never makes its step coarser
    w = np.ones(64)
    w[10] = 100.0
    st2 = _stats(np.random.default_rng(1), w)
    for lam in lams[3:9]:
        a, b2 = lagrangian_tables(st, lam), lagrangian_tables(st2, lam)
        assert b2.luma.ravel()[10] <= a.luma.ravel()[10]
        assert b2.luma.ravel()[10] < a.luma.ravel()[10] or a.luma.ravel()[10] == 1
    # λ found for a target rate lands near it
    lam = fisher_lambda_for_bpp(st, 1.0)
    assert st.estimated_bpp(lagrangian_tables(st, lam)) == pytest.approx(1.0, rel=0.1)


def test_fisher_weights_see_only_what_the_network_sees():
    # ColorNet averages 8×8 cells of its 32×32 input: at 4:4:4 every cell is one block, so only
    # DC coefficients can change its output, and every AC weight must vanish.
    m = tiny_model()
    rng = np.random.default_rng(0)
    inputs = rng.integers(30, 220, (5, 32, 32, 3), dtype=np.uint8)
    st = fisher_statistics(inputs, m, "4:4:4", samples=3, rd_images=4, batch_size=2)
    assert st.w_luma[0] > 0 and np.all(st.w_chroma[:, 0] > 0)
    assert np.all(st.w_luma[1:] < 1e-6 * st.w_luma[0]) and np.all(st.w_chroma[:, 1:] < 1e-6 * st.w_chroma[:, :1])
    assert all(p.requires_grad for p in m.module.parameters())  # the model is left as it was
    t = lagrangian_tables(st, fisher_lambda_for_bpp(st, 0.3))
    assert t.luma.ravel()[0] < t.luma.ravel()[1:].min()  # the only frequency that matters is the finest
    again = fisher_statistics(inputs, m, "4:4:4", samples=3, rd_images=4, batch_size=2)
    assert np.array_equal(again.w_luma, st.w_luma)  # seeded: repeatable


def test_fisher_at_original_weights_what_survives_the_resize():
    # Stored images at 2× the model's resize: the network's 8×8 input cells cover about 16×16
    # stored pixels, so gradients come back through the (differentiable) resize and crop; the
    # antialiasing filter passes low frequencies and all but removes the highest.
    m = tiny_model()
    rng = np.random.default_rng(0)
    stored = [rng.integers(30, 220, (72, 72, 3), dtype=np.uint8) for _ in range(4)]
    stored += [rng.integers(30, 220, (72, 88, 3), dtype=np.uint8) for _ in range(2)]  # two sizes: grouped by shape
    st = fisher_statistics(stored, m, "4:4:4", samples=3, rd_images=6, batch_size=4, geometry=True)
    w = st.w_luma.reshape(8, 8) / st.w_luma[0]
    assert w[0, 1] > w[0, 3] > w[0, 5] > w[0, 7] and w[1, 0] > w[3, 0] > w[5, 0] > w[7, 0]
    assert w[0, 1] > 1e-2 and w[7, 7] < 1e-6
    assert st.luma_blocks == pytest.approx((4 * 81 + 2 * 99) / 6) and st.pixels == pytest.approx(
        (4 * 72 * 72 + 2 * 72 * 88) / 6
    )
    t = lagrangian_tables(st, fisher_lambda_for_bpp(st, 0.5))
    assert t.luma[7, 7] > t.luma[0, 1]  # what the resize removes is quantized coarser


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"needs ../shared imagenet-sample at {SAMPLE}")
def test_entropy_estimate_tracks_real_file_sizes():
    from dnnjpeg.nn import DiffJPEG

    files = sorted(SAMPLE.glob("*.JPEG"))[:8]
    crops = np.stack([np.asarray(Image.open(f).convert("RGB").resize((128, 128), Image.BILINEAR)) for f in files])
    cy, cc = DiffJPEG("4:2:0").transform(torch.from_numpy(crops).permute(0, 3, 1, 2).float())
    by, bc = cy.shape[2] * cy.shape[3], cc.shape[2] * cc.shape[3]
    dy, ry = rd_curves(cy.reshape(-1, 64).numpy(), by)
    cc = cc.permute(1, 0, 2, 3, 4).reshape(2, -1, 64).numpy()
    (dcb, rcb), (dcr, rcr) = rd_curves(cc[0], bc), rd_curves(cc[1], bc)
    st = FisherStats(
        np.ones(64), np.ones((2, 64)), dy, ry, np.stack([dcb, dcr]), np.stack([rcb, rcr]), by, bc, 128 * 128
    )
    for q in (30, 75):
        t = QuantTables.standard(q)
        real = [len(encode(c, t, "4:2:0", optimize=True)) for c in crops]
        header = len(encode(np.full((16, 16, 3), 128, np.uint8), t, "4:2:0", optimize=True))  # ~all header
        real_bpp = 8 * (np.mean(real) - header) / (128 * 128)
        assert st.estimated_bpp(t) == pytest.approx(real_bpp, rel=0.15), q


def test_sweep_codec_spelling(tmp_path):
    ts = [QuantTables.standard(q) for q in (20, 50, 80)]
    doc = ts[1].to_dict()
    doc["design"] = {"method": "fisher", "sweep": [{"tables": t.to_dict(), "lam": 10.0**-i} for i, t in enumerate(ts)]}
    f = tmp_path / "d.json"
    f.write_text(json.dumps(doc))
    c = parse_codec(f"sweep:{f}@4:4:4")
    assert c.kind == "tables" and [p.tables for p in c.points] == ts and c.points[0].subsampling == "4:4:4"
    assert c.points[1].tag == "λ=0.1 nats/bit"
    single = tmp_path / "one.json"
    single.write_text(ts[0].to_json())
    with pytest.raises(ValueError, match="no sweep"):
        parse_codec(f"sweep:{single}")
    with pytest.raises(ValueError, match="missing.json"):
        parse_codec(f"sweep:{tmp_path / 'missing.json'}")


def test_preset_holding_a_sweep_is_evaluated_as_its_family(monkeypatch):
    import dnnjpeg.presets as presets

    ts = [QuantTables.standard(q) for q in (15, 40, 85)]
    doc = ts[1].to_dict()
    doc["design"] = {
        "method": "fisher",
        "subsampling": "4:4:4",
        "sweep": [{"tables": t.to_dict(), "lam": 1.0 / (i + 1)} for i, t in enumerate(ts)],
    }
    monkeypatch.setattr(presets, "preset_info", lambda name: doc)
    c = parse_codec("preset:anything")
    assert (
        [p.tables for p in c.points] == ts
        and c.points[0].subsampling == "4:4:4"
        and c.name.startswith("preset:anything")
    )
    doc["design"]["sweep"][1]["tables"] = {"luma": [[0] * 8] * 8}
    with pytest.raises(ValueError, match="preset anything: sweep point 1"):
        parse_codec("preset:anything")
