import json

import numpy as np
import pytest

from dnnjpeg.codec import QuantTables, encode
from dnnjpeg.data import discover
from dnnjpeg.evaluate import CodecCurve, CodecSpec, build_pristine, evaluate, recompare, run_trial, write_outputs

from .tiny import tiny_model, write_images


def test_rates_are_real_file_sizes_at_both_places(tmp_path):
    write_images(tmp_path / "d", 6, size=(53, 41))
    ds = discover(tmp_path / "d")
    m = tiny_model()
    spec = CodecSpec(QuantTables.standard(40), "4:2:0")
    for at in ("input", "original"):
        pr = build_pristine(ds, m, at)
        tr = run_trial(spec, pr, m, batch_size=4, workers=2)
        for i, src in enumerate(pr.sources):
            data = encode(src, spec.tables, spec.subsampling, spec.optimize)
            assert tr.bits[i] == 8 * len(data)
        expect = (32 * 32) if at == "input" else (53 * 41)
        assert pr.pixels.tolist() == [expect] * 6
        assert pr.sources[0].shape == ((32, 32, 3) if at == "input" else (41, 53, 3))


def test_trial_matches_direct_classification(tmp_path):
    write_images(tmp_path / "d", 5)
    ds = discover(tmp_path / "d")
    m = tiny_model()
    pr = build_pristine(ds, m, "input")
    spec = CodecSpec(QuantTables.standard(20), "4:4:4")
    tr = run_trial(spec, pr, m, batch_size=2, workers=2, keep_logits=True)
    from dnnjpeg.codec import decode

    direct = m.logits(np.stack([decode(encode(s, spec.tables, "4:4:4")) for s in pr.sources]))
    assert np.allclose(tr.logits, direct, atol=1e-5)
    assert np.array_equal(tr.top5[:, 0], direct.argmax(1))
    # KL of pristine against itself is 0; against JPEG it is positive
    assert tr.kl.min() >= 0 and tr.kl.mean() > 0


def test_corrupt_image_is_reported_and_skipped(tmp_path):
    write_images(tmp_path / "d", 4)
    (tmp_path / "d" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "d" / "trunc.jpg").write_bytes(
        encode(np.zeros((64, 64, 3), np.uint8) + 100, QuantTables.standard(90))[:200]
    )
    ds = discover(tmp_path / "d")
    res = evaluate(ds, tiny_model(), [CodecCurve.standard((10, 50, 90))], n_boot=0, progress=False)
    assert res["settings"]["n_images"] == 4
    bad = {p.split("/")[-1] for p, _ in res["failures"]}
    assert bad == {"broken.png", "trunc.jpg"}


def test_evaluate_end_to_end_outputs(tmp_path):
    write_images(tmp_path / "d", 12)
    ds = discover(tmp_path / "d")
    curves = [
        CodecCurve.standard((5, 20, 50, 90)),
        CodecCurve.from_tables(QuantTables.standard(50), (0.5, 1, 2, 4), "4:4:4", name="t"),
    ]
    res = evaluate(ds, tiny_model(), curves, n_boot=50, progress=False)
    assert res["settings"]["accuracy_metric"] == "agreement" and not res["settings"]["labeled"]
    assert res["pristine"]["top1"] == 100.0  # unlabeled: labels are the pristine predictions
    pts = res["curves"][0]["points"]
    assert [p["quality"] for p in pts] == [5, 20, 50, 90]
    assert all(a["bpp"] < b["bpp"] for a, b in zip(pts, pts[1:]))
    assert all(p["top1"] == p["agreement"] for p in pts)
    assert len(res["comparisons"]) == 1 and res["comparisons"][0]["reference"] == "standard 4:2:0"
    paths = write_outputs(res, tmp_path / "out")
    back = json.loads(paths["results"].read_text())
    assert back["curves"][1]["points"][0]["scale"] == 0.5
    assert paths["curves"].stat().st_size > 10_000
    assert "standard 4:2:0" in paths["markdown"].read_text() and "<table>" in paths["html"].read_text()


def test_recompare_rebuilds_comparisons_from_saved_per_image_records(tmp_path):
    write_images(tmp_path / "d", 12)
    curves = [
        CodecCurve.standard((5, 20, 50, 90)),
        CodecCurve.from_tables(QuantTables.standard(50), (0.5, 1, 2, 4), "4:2:0", name="t"),
    ]
    res = evaluate(discover(tmp_path / "d"), tiny_model(), curves, n_boot=40, progress=False)
    saved = json.loads(write_outputs(res, tmp_path / "out")["results"].read_text())
    again = recompare(saved)
    k0, k1 = res["comparisons"][0], again["comparisons"][0]
    for key in ("bd_rate", "bd_accuracy"):
        assert k1[key] == pytest.approx(k0[key], nan_ok=True)
    assert k1["bd_rate_kl"] == pytest.approx(
        k0["bd_rate_kl"], rel=1e-3, abs=1e-3, nan_ok=True
    )  # saved KL is rounded to 1e-6
    assert k1["bd_rate_ci"] == pytest.approx(k0["bd_rate_ci"], nan_ok=True)
    flipped = recompare(saved, reference="t 4:2:0")["comparisons"][0]
    assert flipped["reference"] == "t 4:2:0" and flipped["test"] == "standard 4:2:0"
    if np.isfinite(k0["bd_rate_kl"]):  # same curves, the other way round: the sign flips
        assert np.sign(flipped["bd_rate_kl"]) == -np.sign(k0["bd_rate_kl"]) or abs(k0["bd_rate_kl"]) < 1e-6
    del saved["curves"][0]["points"][0]["per_image"]
    with pytest.raises(ValueError, match="per-image"):
        recompare(saved)
    with pytest.raises(ValueError, match="not among"):
        recompare(res, reference="nope")


def test_sdq_codecs_are_measured_like_any_family(tmp_path):
    """evaluate --codec sdq:…: the files are the SDQ members' own (gradient weights from the
    measuring model), their rates real, and every member joins the comparisons."""
    from dnnjpeg.families import parse_family
    from dnnjpeg.sdq.weights import gradient_weights

    write_images(tmp_path / "d", 4, size=(53, 41))
    ds = discover(tmp_path / "d")
    m = tiny_model()
    pr = build_pristine(ds, m, "original")
    for kind in ("mse", "gradient"):
        spec = parse_family(f"sdq:{kind}:0.05:standard:50").points[0]
        tr = run_trial(spec, pr, m, batch_size=2, workers=0)
        for i, src in enumerate(pr.sources):
            w = gradient_weights(src, m) if kind == "gradient" else None
            assert tr.bits[i] == 8 * len(spec.encode(src, weights=w))
            assert tr.bits[i] < 8 * len(encode(src, spec.tables, "4:2:0", True))
    # the next gradient member reuses each image's weights (one backward pass per image, not per member)
    assert len([k for k in pr.weights if k != "bytes"]) == 4
    spec2 = parse_family("sdq:gradient:0.05:standard:20").points[0]
    tr2 = run_trial(spec2, pr, m, batch_size=2, workers=0)
    assert len([k for k in pr.weights if k != "bytes"]) == 4
    assert list(tr2.bits) == [8 * len(spec2.encode(x, weights=gradient_weights(x, m))) for x in pr.sources]
    res = evaluate(ds, m, [CodecCurve.standard((20, 50, 90)), parse_family("sdq:mse:0.05:standard:20,50,90")],
                   at="original", n_boot=0, progress=False)  # fmt: skip
    names = [c["name"] for c in res.to_dict()["curves"]]
    assert "sdq:mse:0.05 standard 4:2:0" in names
    assert any(c["test"] == "sdq:mse:0.05 standard 4:2:0" for c in res.to_dict()["comparisons"])
