"""TableFamily and the one reader of table, sweep, design and preset documents."""

import json

import pytest

from dnnjpeg.codec import QuantTables
from dnnjpeg.design import DesignResult
from dnnjpeg.families import TableFamily, family_from_document, parse_family


def _doc(n_sweep: int, kappa: bool) -> dict:
    d = QuantTables.standard(50).to_dict()
    d["design"] = {"method": "fisher", "model": "m", "at": "original", "subsampling": "4:4:4"}
    if n_sweep:
        d["design"]["sweep"] = [
            {"tables": QuantTables.standard(q).to_dict(), "lam": 1 / q, **({"kappa": 1 / q} if kappa else {})}
            for q in range(20, 20 + 10 * n_sweep, 10)
        ]
    return d


def test_one_reader_for_tables_sweeps_and_presets(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps(_doc(3, kappa=True)))
    sweep = parse_family(f"sweep:{tmp_path / 'd.json'}")
    assert sweep.members == tuple(QuantTables.standard(q) for q in (20, 30, 40))
    assert sweep.kappa == (1 / 20, 1 / 30, 1 / 40) and sweep.designed_for == ("m", "original")
    assert sweep.labels == ("λ=0.05 nats/bit", "λ=0.0333 nats/bit", "λ=0.025 nats/bit")
    scaled = parse_family(f"tables:{tmp_path / 'd.json'}", scales=(0.5, 1.0))
    assert scaled.members == (QuantTables.standard(50).scaled(0.5), QuantTables.standard(50)) and scaled.kappa is None
    (tmp_path / "one.json").write_text(json.dumps(_doc(0, kappa=False)))
    with pytest.raises(ValueError, match="no sweep"):
        parse_family(f"sweep:{tmp_path / 'one.json'}")
    no_kappa = family_from_document(_doc(2, kappa=False), "here", name="x")
    assert len(no_kappa) == 2 and no_kappa.kappa is None
    preset = parse_family("preset:efficientnet-lite0-420-original-sweep")
    assert preset.kappa is not None and len(preset.kappa) == len(preset) >= 2
    with pytest.raises(ValueError, match="here: a table document is a JSON object"):
        family_from_document([1, 2], "here", name="x")


def test_union_and_kappa_rules():
    a = TableFamily.standard((20, 80), "4:2:0").with_kappa([0.2, 0.01])
    b = TableFamily.standard((20, 80), "4:4:4").with_kappa([0.15, 0.005])
    u = TableFamily.union([a, b])
    assert (
        len(u) == 4 and u.subsamplings == ("4:2:0", "4:2:0", "4:4:4", "4:4:4") and u.kappa == (0.2, 0.01, 0.15, 0.005)
    )
    assert TableFamily.union([a, TableFamily.standard((50,))]).kappa is None
    with pytest.raises(ValueError, match="3 mean KL values for 2 members"):
        a.with_kappa([1, 2, 3])


def test_a_design_result_saves_its_family_as_a_sweep(tmp_path):
    fam = TableFamily.from_table_set([QuantTables.standard(q) for q in (30, 60)], ["λ=1", "λ=0.5"], name="fisher")
    res = DesignResult("fisher", QuantTables.standard(60), family=fam, sweep_info=[{"lam": 1.0}, {"lam": 0.5}])
    res.save(tmp_path / "r.json")
    back = parse_family(f"sweep:{tmp_path / 'r.json'}")
    assert back.members == fam.members and back.labels == ("λ=1 nats/bit", "λ=0.5 nats/bit")
    assert QuantTables.load(tmp_path / "r.json") == QuantTables.standard(60)


def test_sdq_families_search_the_levels_of_a_familys_tables(kodak_dir):
    import numpy as np
    from PIL import Image

    from dnnjpeg.codec import decode, encode
    from dnnjpeg.sdq.encode import sdq_encode, table_lambda
    from dnnjpeg.sdq.weights import model_weights

    f = parse_family("sdq:mse:0.02:standard:40,80")
    assert f.kind == "sdq" and f.name == "sdq:mse:0.02 standard 4:2:0" and f.labels == ("q=40", "q=80")
    assert all(p.encoder == "sdq" and p.sdq == ("mse", 0.02, 0) for p in f.points)
    assert f.points[0].to_dict()["sdq"] == ["mse", 0.02, 0]
    d = parse_family("sdq:fisher")
    assert len(d) == 8 and d.points[0].sdq == ("fisher", 0.01, 0) and d.kappa is None  # SDQ changes the KL
    assert parse_family("sdq:fisher:0.03:r1:standard:50@4:4:4").points[0].subsampling == "4:4:4"
    img = np.asarray(Image.open(kodak_dir / "kodim03.png").convert("RGB"))[:96, :120]
    spec = f.points[1]
    lam = table_lambda(spec.tables, model_weights("mse"), 0.02)
    assert spec.encode(img) == sdq_encode(img, spec.tables, lam, None)[0]
    assert len(spec.encode(img)) < len(encode(img, spec.tables, "4:2:0", True))
    gray = img[..., 1]
    assert spec.encode(gray) == encode(gray, spec.tables, "4:2:0", True)  # gray: plain rounding
    assert decode(spec.encode(img)).shape == img.shape
    with pytest.raises(ValueError, match="this image's weights"):
        parse_family("sdq:gradient:0.01:standard:50").points[0].encode(img)
    for bad, msg in (("sdq:psnr", "fisher, crop, gradient, mse"), ("sdq:fisher:jpegli", "plain tables"),
                     ("sdq:mse:-1", "alpha"), ("sdq:mse:standard@4:2:2", "4:2:0 or 4:4:4"),
                     ("sdq:fisher:sdq:mse", "plain tables")):  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            parse_family(bad)


def test_resize_suffix_stores_the_image_smaller_and_counts_its_source_pixels(tmp_path):
    import numpy as np

    from dnnjpeg.codec import decode
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate
    from dnnjpeg.models import load_model

    f = parse_family("standard:50+resize:64")
    assert f.name == "standard 4:2:0 resized to 64" and f.points[0].resize == 64 and f.kappa is None
    assert parse_family(f"{'preset:efficientnet-lite0-420-original-sweep'}+resize:64").kappa is None
    img = (np.random.default_rng(0).random((96, 160, 3)) * 255).astype(np.uint8)
    assert decode(f.points[0].encode(img)).shape == (64, 107, 3)
    assert f.points[0].to_dict()["resize"] == 64 and "resize" not in parse_family("standard:50").points[0].to_dict()
    for bad in ("standard+resize:0", "standard+resize:x", "qnet:preset:efficientnet-lite0-qnet+resize:64"):
        with pytest.raises(ValueError):
            parse_family(bad)
    from .evaluate.tiny import write_images

    write_images(tmp_path / "d", 2, size=(96, 160))
    res = evaluate(discover(tmp_path / "d"), load_model("efficientnet-lite0"),
                   [parse_family("standard:50"), f], at="original", n_boot=0, progress=False).to_dict()  # fmt: skip
    plain, small = (c["points"][0] for c in res["curves"])
    assert res["pristine"]["per_image"]["pixels"] == [96 * 160] * 2  # per pixel of the stored image
    assert small["bpp"] < 0.8 * plain["bpp"]  # (4/9 of the pixels; the headers weigh on 96×160 images)
