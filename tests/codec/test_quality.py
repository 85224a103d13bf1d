import numpy as np

from dnnjpeg.codec import QuantTables, estimate_quality, estimate_quality_tables


def test_exact_for_every_quality_both_clampings():
    for q in range(1, 101):
        assert estimate_quality(QuantTables.standard(q)).quality == q
        assert estimate_quality(QuantTables.standard(q)).exact
        ext = QuantTables.standard(q, force_baseline=False)
        est = estimate_quality(ext)
        assert est.exact and est.quality == q


def test_chroma_ambiguity_resolved_by_luma():
    # chroma alone is all-255 for q = 1, 2, 3; luma tells them apart
    for q in (1, 2, 3):
        assert np.all(QuantTables.standard(q).chroma == 255)
        assert estimate_quality(QuantTables.standard(q)).quality == q


def test_non_ijg_is_nearest_with_distance():
    t = QuantTables.standard(75)
    luma = t.luma.astype(int).copy()
    luma[0, 0] += 4
    est = estimate_quality_tables(luma, t.chroma)
    assert not est.exact and est.quality == 75
    assert abs(est.distance - 4 / 128) < 1e-9
    # luma from one quality, chroma from another: not IJG
    mixed = estimate_quality_tables(QuantTables.standard(80).luma, QuantTables.standard(60).chroma)
    assert not mixed.exact and mixed.distance > 0
    flat = estimate_quality_tables(np.full((8, 8), 2), np.full((8, 8), 2))
    assert not flat.exact and 90 <= flat.quality <= 100
