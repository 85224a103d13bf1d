import numpy as np
import pytest

from dnnjpeg.evaluate.compare import CurveData, bd_accuracy, bd_rate, compare_curves, monotone_curve, rate_at_accuracy

R = np.array([0.3, 0.45, 0.6, 0.8, 1.1, 1.5, 2.2])
A = np.array([55.0, 64, 70, 74, 77.5, 79.5, 81])


def test_bd_rate_self_zero_and_half_rate():
    assert bd_rate(R, A, R, A) == pytest.approx(0, abs=1e-9)
    assert bd_rate(R, A, R / 2, A) == pytest.approx(-50, abs=1e-6)
    assert bd_rate(R, A, R * 1.25, A) == pytest.approx(25, abs=1e-6)
    assert bd_accuracy(R, A, R, A + 2) == pytest.approx(2, abs=1e-9)
    assert np.isnan(bd_rate(R, A, R * 100, A + 100))  # no overlap


def test_monotone_curve_isotonic_and_strict():
    r, a = monotone_curve([3, 1, 2, 4, 5], [70, 60, 72, 71, 80])  # unsorted, a dip at rate 4
    assert r.tolist() == [1, 2, 5] or r.tolist() == [1, 2, 4, 5][: len(r)]
    assert np.all(np.diff(a) > 0) and np.all(np.diff(r) > 0)
    # isotonic fit pools 72 and 71 to 71.5
    r, a = monotone_curve([1, 2, 3, 4], [60, 72, 71, 80])
    assert a.tolist() == [60, 71.5, 80] and r.tolist() == [1, 2, 4]


def test_rate_at_accuracy():
    assert rate_at_accuracy(R, A, 74) == pytest.approx(0.8)
    mid = rate_at_accuracy(R, A, 72)
    assert 0.6 < mid < 0.8
    assert np.isnan(rate_at_accuracy(R, A, 90))


def _synthetic(n=400, seed=0, shift=1.0):
    # Per-image correctness rises with rate through a logistic; the test curve needs `shift`× the bits.
    rng = np.random.default_rng(seed)
    pts = np.array([0.3, 0.5, 0.8, 1.2, 2.0, 3.0])
    difficulty = rng.normal(size=n)
    pixels = np.full(n, 224 * 224)

    def curve(name, scale):
        p = 1 / (1 + np.exp(-(np.log(pts / scale)[:, None] * 2 + 1.5 - difficulty[None])))
        correct = rng.random((len(pts), n)) < p
        bits = (pts[:, None] * pixels[None] * np.exp(rng.normal(0, 0.2, (len(pts), n)))).astype(np.int64)
        # KL to the pristine output falls as a power of the rate, times a per-image difficulty
        kl = np.exp(-1.5 * np.log(pts / scale)[:, None] + difficulty[None] + rng.normal(0, 0.3, (len(pts), n)))
        return CurveData(name, bits, correct, pixels, kl)

    pristine = rng.random(n) < 1 / (1 + np.exp(-(1.5 + 4 - difficulty)))
    return curve("ref", 1.0), curve("test", shift), pristine


def test_bootstrap_interval_covers_estimate_and_detects_big_gain():
    ref, test, pristine = _synthetic(shift=0.5)
    c = compare_curves(ref, test, pristine, drop=1.0, n_boot=300, seed=1)
    lo, hi = c.bd_rate_ci
    assert lo <= c.bd_rate <= hi
    assert hi < 0  # half the bits: clearly better
    assert -70 < c.bd_rate < -30
    lo, hi = c.bd_accuracy_ci
    assert lo <= c.bd_accuracy <= hi and c.bd_accuracy > 0


def test_same_codec_intervals_are_calibrated():
    # Two curves drawn from one distribution: a 95% interval should hold 0 in about
    # 95% of replicates (measured: 36 of 40), and the estimates should centre on 0.
    # The same holds for the BD-rate on KL.
    covered, estimates, covered_kl, estimates_kl = 0, [], 0, []
    for s in range(20):
        ref, test, pristine = _synthetic(shift=1.0, seed=100 + s)
        c = compare_curves(ref, test, pristine, n_boot=150, seed=s)
        lo, hi = c.bd_rate_ci
        covered += lo < 0 < hi
        estimates.append(c.bd_rate)
        covered_kl += c.bd_rate_kl_ci[0] < 0 < c.bd_rate_kl_ci[1]
        estimates_kl.append(c.bd_rate_kl)
    assert covered >= 16 and covered_kl >= 16
    assert abs(np.mean(estimates)) < 3 and abs(np.mean(estimates_kl)) < 1.5


def test_kl_bd_rate_sees_a_gain_with_a_narrower_interval_than_top1():
    # 20% fewer bits for the same fidelity: both BD-rates should see it, the KL one more precisely,
    # because every image moves its KL while top-1 moves only at decision boundaries.
    ref, test, pristine = _synthetic(shift=0.8, seed=3)
    c = compare_curves(ref, test, pristine, n_boot=300, seed=0)
    lo, hi = c.bd_rate_kl_ci
    assert lo <= c.bd_rate_kl <= hi < 0
    assert -30 < c.bd_rate_kl < -10
    assert hi - lo < 0.5 * (c.bd_rate_ci[1] - c.bd_rate_ci[0])
    same = compare_curves(ref, ref, pristine, n_boot=50, seed=0)
    assert same.bd_rate_kl == pytest.approx(0, abs=1e-6)


def test_kl_bd_rate_is_nan_without_per_image_kl():
    ref, test, pristine = _synthetic(shift=0.8, seed=3)
    test.kl = None
    c = compare_curves(ref, test, pristine, n_boot=20, seed=0)
    assert np.isnan(c.bd_rate_kl) and np.isfinite(c.bd_rate)
    with pytest.raises(ValueError, match="test"):
        test.fidelity()


def test_wilson_interval_and_the_small_sample_figure(tmp_path):
    import json

    from dnnjpeg.evaluate.report import _precision_lines, plot_curves, wilson_interval

    lo, hi = wilson_interval(7, 14)
    assert 22 < 50 - lo < 24 and abs((50 - lo) - (hi - 50)) < 1e-9  # ±23 points around 50% with 14 images
    assert abs(wilson_interval(0, 10)[0]) < 1e-9 and wilson_interval(10, 10)[1] > 99.99
    assert "±23 points" in _precision_lines({"n_images": 14, "accuracy_metric": "agreement"})[0][1]
    assert _precision_lines({"n_images": 500, "accuracy_metric": "top1"}) == []
    golden = json.loads(
        (__import__("pathlib").Path(__file__).parents[1] / "golden" / "evaluate-results.json").read_text()
    )
    golden["settings"]["split"] = "all"
    assert plot_curves(golden, tmp_path / "c.png").stat().st_size > 10_000
