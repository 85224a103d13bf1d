import io
import os

import numpy as np
import pytest
from PIL import Image

from dnnjpeg.codec import QuantTables
from dnnjpeg.survey import PARTS_DIR, odd_files, summarize, survey, write_survey
from dnnjpeg.survey.plots import umap_embedding

from ..codec.makers import jpeglib_jpeg, noise_image, pillow_jpeg


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A tree with every case the survey must get right; returns (root, expectations)."""
    root = tmp_path_factory.mktemp("tree")
    img = noise_image(24, 40)
    exp = {}
    for q in range(1, 101):
        for ss in ("4:4:4", "4:2:2", "4:2:0"):
            p = root / "q" / f"q{q:03d}_{ss.replace(':', '')}.jpg"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(pillow_jpeg(img, quality=q, subsampling=ss))
            exp[str(p)] = dict(quality=q, subsampling=ss, width=40, height=24, grayscale=False, mode="baseline")
    d = root / "misc"
    d.mkdir()
    (d / "gray.jpg").write_bytes(pillow_jpeg(noise_image(30, 20, channels=1), quality=55))
    exp[str(d / "gray.jpg")] = dict(quality=55, subsampling="gray", grayscale=True, width=20, height=30)
    (d / "prog.jpg").write_bytes(pillow_jpeg(img, quality=80, progressive=True))
    exp[str(d / "prog.jpg")] = dict(quality=80, mode="progressive", progressive=True)
    buf = io.BytesIO()
    Image.fromarray(img).convert("CMYK").save(buf, "JPEG", quality=70)
    (d / "cmyk.jpg").write_bytes(buf.getvalue())
    exp[str(d / "cmyk.jpg")] = dict(color="CMYK", components=4)
    jpeglib_jpeg(noise_image(40, 56), ((4, 1), (1, 1), (1, 1)), d / "s411.jpg", quality=75)
    exp[str(d / "s411.jpg")] = dict(subsampling="4:1:1", quality=75)
    jpeglib_jpeg(noise_image(40, 56), ((1, 2), (1, 1), (1, 1)), d / "s440.jpg", quality=60)
    exp[str(d / "s440.jpg")] = dict(subsampling="4:4:0", quality=60)
    rng = np.random.default_rng(0)
    custom = QuantTables(rng.integers(1, 200, (8, 8)), rng.integers(1, 200, (8, 8)))
    from dnnjpeg.codec import encode

    (d / "custom.jpg").write_bytes(encode(img, custom))
    exp[str(d / "custom.jpg")] = dict(quality_exact=False)
    (d / "wide.jpg").write_bytes(pillow_jpeg(noise_image(32, 500), quality=90))
    exp[str(d / "wide.jpg")] = dict(width=500, height=32)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    (d / "n0001_fake.JPEG").write_bytes(buf.getvalue())
    exp[str(d / "n0001_fake.JPEG")] = dict(ok=False, error="NotAJpegError", format="PNG")
    full = pillow_jpeg(noise_image(64, 64), quality=85)
    (d / "trunc_body.jpg").write_bytes(full[: len(full) - 300])
    exp[str(d / "trunc_body.jpg")] = dict(ok=True, eoi_found=False)
    (d / "trunc_head.jpg").write_bytes(full[:100])
    exp[str(d / "trunc_head.jpg")] = dict(ok=False, error="CorruptJpegError", format="JPEG")
    (d / "zero.jpg").write_bytes(b"")
    exp[str(d / "zero.jpg")] = dict(ok=False, error="NotAJpegError", format="empty")
    os.symlink("loop_b.jpg", d / "loop_a.jpg")
    os.symlink("loop_a.jpg", d / "loop_b.jpg")
    for n in ("loop_a.jpg", "loop_b.jpg"):
        exp[str(d / n)] = dict(ok=False, error="SymlinkLoop")
    os.mkfifo(d / "pipe.jpg")
    exp[str(d / "pipe.jpg")] = dict(ok=False, error="WalkError")
    os.symlink(str(root / "q"), d / "dirlink")
    exp[str(d / "dirlink")] = dict(ok=False, error="WalkError")
    return root, exp


@pytest.mark.parametrize("workers", [1, 2])
def test_every_field_right(tree, workers):
    root, exp = tree
    # chunk=16: many more chunks than the pool keeps in flight, so the bounded wait runs
    df = survey([root], ["fx"], workers=workers, chunk=16)
    assert len(df) == len(exp) and df["path"].is_unique
    rows = {r["path"]: r for r in df.to_dict("records")}
    assert set(rows) == set(exp)
    for path, want in exp.items():
        r = rows[path]
        assert r["tree"] == "fx"
        want = {"ok": True, **want}
        for k, v in want.items():
            assert r[k] == v, (path, k, r[k], v)
        if want["ok"]:
            assert r["format"] == "JPEG" and r["error"] is pd_na() or r["error"] is None
    q50 = rows[str(root / "q" / "q050_420.jpg")]
    assert list(q50["luma_table"]) == QuantTables.standard(50).luma.reshape(64).tolist()
    assert list(q50["chroma_table"]) == QuantTables.standard(50).chroma.reshape(64).tolist()
    assert q50["quality_exact"] and q50["quality_distance"] == 0
    assert rows[str(root / "misc" / "gray.jpg")]["chroma_table"] is None


def pd_na():
    import pandas as pd

    return pd.NA


def test_permission_denied_is_an_error_row(tree, monkeypatch):
    import dnnjpeg.survey.scan as scan

    root, _ = tree
    real = scan.parse_header
    victim = str(root / "misc" / "gray.jpg")

    def fake(path, *a, **k):
        if path == victim:
            raise PermissionError(13, "Permission denied", path)
        return real(path, *a, **k)

    monkeypatch.setattr(scan, "parse_header", fake)
    df = survey([root / "misc"], workers=1)
    r = df[df["path"] == victim].iloc[0]
    assert not r["ok"] and r["error"] == "PermissionError" and "Permission denied" in r["message"]
    assert df["ok"].sum() == 7  # every other readable JPEG in misc still read


def test_summary_and_odd_files(tree):
    root, exp = tree
    df = survey([root / "q", root / "misc"], ["a", "b"], workers=1)
    s = summarize(df)
    a, b = s["trees"]["a"], s["trees"]["b"]
    assert a["n_files"] == 300 and a["subsampling"] == {"4:4:4": 100, "4:2:2": 100, "4:2:0": 100}
    assert a["quality_exact"] == {str(q): 3 for q in range(1, 101)} and a["quality_not_ijg"] == 0
    assert b["grayscale"] == 1 and b["errors"]["SymlinkLoop"] == 2 and b["formats"]["PNG"] == 1
    odd = odd_files(df)
    names = {k: {os.path.basename(p) for p in v} for k, v in odd.items()}
    assert names["not JPEG"] == {"n0001_fake.JPEG", "zero.jpg"}
    assert {"trunc_head.jpg", "loop_a.jpg", "pipe.jpg"} <= names["unreadable or corrupt"]
    assert names["CMYK / YCCK"] == {"cmyk.jpg"} and names["4:1:1"] == {"s411.jpg"}
    assert len(names["quality < 10"]) == 27 + (0)  # q1..q9 in three subsamplings
    assert "wide.jpg" in names["extreme aspect (≥ 4:1)"] and "wide.jpg" in names["tiny (a side < 64 px)"]
    assert names["truncated (no end-of-image marker)"] == {"trunc_body.jpg"}


def test_imagenet_sample_counts(imagenet_dir):
    df = survey([imagenet_dir], workers=2)
    s = summarize(df)["trees"]["imagenet-sample"]
    assert s["n_files"] == 1000 and s["n_jpeg"] == 1000
    assert s["quality_exact"]["96"] == 671 and s["quality_not_ijg"] == 0
    assert s["subsampling"]["4:4:4"] == 761 and s["subsampling"]["4:2:0"] == 203 and s["subsampling"]["4:2:2"] == 12
    assert s["grayscale"] == 23


def test_outputs_plots_and_umap(tree, tmp_path):
    root, _ = tree
    df = survey([root / "q", root / "misc"], ["a", "b"], workers=1)
    written = write_survey(df, tmp_path / "out", csv=True)
    for key in (
        "parquet",
        "csv",
        "summary",
        "html",
        "sizes",
        "sizes_full",
        "subsampling",
        "quality",
        "color_gray",
        "bits_per_pixel",
        "umap_subsampling",
        "umap_quality",
    ):
        assert written[key].stat().st_size > 1000 or key in ("summary",), key
    import pandas as pd

    back = pd.read_parquet(written["parquet"])
    assert len(back) == len(df) and list(back["luma_table"].iloc[0]) == list(df["luma_table"].iloc[0])
    page = written["html"].read_text()
    assert "n0001_fake.JPEG" in page and "umap_quality.png" in page
    emb, rows = umap_embedding(df, max_points=100)
    assert emb.shape == (len(rows), 2) and len(rows) <= 100 and np.isfinite(emb).all()
    assert rows["count"].sum() >= len(rows)
    # one setting shared by every file: nothing to project
    same = df[df["path"].str.contains("q050_420")]
    assert umap_embedding(same) is None


def test_resume_after_interrupt(tree, tmp_path, monkeypatch):
    import dnnjpeg.survey as sv
    import dnnjpeg.survey.scan as scan

    root, _ = tree
    parts = tmp_path / PARTS_DIR
    calls = []

    def stop_after_two(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        survey([root / "q"], workers=1, parts_dir=parts, chunk=50, progress=stop_after_two)
    saved = sorted(parts.glob("part-*.parquet"))
    assert len(saved) == 2 and not list(parts.glob(".part-*"))  # no half-written part
    scanned = []
    real = sv.scan_files

    def counting(items, tree_label):
        scanned.extend(p for p, _ in items)
        return real(items, tree_label)

    monkeypatch.setattr(sv, "scan_files", counting)
    df = survey([root / "q"], workers=1, parts_dir=parts, resume=True, chunk=50)
    assert len(scanned) == 200 and len(df) == 300 and df["path"].is_unique
    assert scan.COLUMNS[0] == "path"


def test_names_that_are_not_utf8_survive_parquet_and_resume(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    raw = os.path.join(os.fsencode(src), b"caf\xe9-\xff.jpg")
    with open(raw, "wb") as f:
        f.write(pillow_jpeg(noise_image(16, 16)))
    (src / "ok.jpg").write_bytes(pillow_jpeg(noise_image(16, 24)))
    parts = tmp_path / "out" / PARTS_DIR
    df = survey([src], workers=1, parts_dir=parts, chunk=1)
    assert len(df) == 2 and df["ok"].all()
    assert raw in {bytes(b) for b in df["path_bytes"]}
    assert "caf\\xe9-\\xff.jpg" in " ".join(df["path"])
    again = survey([src], workers=1, parts_dir=parts, resume=True, chunk=1)  # every row from its saved part
    assert len(again) == 2 and set(map(bytes, again["path_bytes"])) == set(map(bytes, df["path_bytes"]))
    written = write_survey(again, tmp_path / "out", csv=True, umap=False)
    assert written["parquet"].exists() and written["csv"].exists()
    assert odd_files(again)["name not valid UTF-8"] == [p for p in again["path"] if "\\x" in p]


def test_a_65535_square_header_is_listed_as_huge(tmp_path):
    data = bytearray(pillow_jpeg(noise_image(16, 16)))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = b"\xff\xff\xff\xff"
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    df = survey([tmp_path], workers=1)
    huge = [v for k, v in odd_files(df).items() if k.startswith("huge")]
    assert huge == [[str(tmp_path / "bomb.jpg")]]
