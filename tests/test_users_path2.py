"""The user's path II: one test per numbered item of the issue that is done (the number in the name)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables

from .codec.makers import noise_image


def _photos(d: Path, n: int = 2) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(noise_image(48, 64, seed=i)).save(d / f"n01440764_{i}.JPEG", quality=95)
    return d


def test_08_tables_from_a_quality_are_spelled_standard_q(tmp_path):
    src = _photos(tmp_path / "src")
    QuantTables.standard(75).save(tmp_path / "q75.json")
    a = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "a"), "--tables", "standard:75"])
    b = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "b"), "--tables", str(tmp_path / "q75.json")])
    assert a.exit_code == 0 and b.exit_code == 0, a.output
    for f in src.iterdir():
        assert (tmp_path / "a" / f.name).read_bytes() == (tmp_path / "b" / f.name).read_bytes()
    for bad in ("standard:0", "standard:101", "standard:x"):
        r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "c"), "--tables", bad])
        assert r.exit_code != 0 and "standard:Q takes libjpeg's quality" in r.output


def test_07_dst_mirrors_src_names_a_jpeg_without_extension_keeps_its_name(tmp_path):
    src = _photos(tmp_path / "src", 1)
    (src / "n01440764_0.JPEG").rename(src / "photo")  # a JPEG with no extension
    Image.fromarray(noise_image(32, 32, seed=5)).save(src / "drawing.png")
    (src / "odd.jpe").write_bytes((src / "photo").read_bytes())
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), "--tables", "standard:50"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "dst").iterdir() if not p.name.startswith("."))
    assert names == ["drawing.jpg", "odd.jpe", "photo"]
    assert (tmp_path / "dst" / "photo").read_bytes()[:2] == b"\xff\xd8"
    import types

    from dnnjpeg.check import pairs

    found, missing, _ = pairs(src, tmp_path / "dst", types.SimpleNamespace(info={}, labels="custom"))
    assert len(found) == 3 and not missing  # check pairs each source with its output by the same rule


def test_11_a_rerun_into_its_own_dst_says_so_once(tmp_path):
    src = _photos(tmp_path / "src", 5)
    argv = ["compress", str(src), str(tmp_path / "dst"), "--tables", "standard:50"]
    assert CliRunner().invoke(app, argv).exit_code == 0
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.startswith("failed")]
    assert len(lines) == 1 and "and 4 more exist already" in lines[0] and "--resume" in lines[0]


def test_03_models_prints_each_builtins_preprocessing():
    import json

    from dnnjpeg.models import load_model

    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [x["name"] for x in rows] == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
    lite0 = rows[0]["preprocess"]
    assert "mean=0.5/0.5/0.5" in lite0 and "size=224" in lite0
    # the string round-trips: given with an export, it is exactly the built-in's preprocessing
    from dnnjpeg.models import Preprocess
    from dnnjpeg.models.files import model_spec, parse_preprocess, split_spec

    _, opts = split_spec(model_spec("x.pt", lite0))
    assert parse_preprocess(opts, Preprocess(224, 256)) == load_model("efficientnet-lite0").preprocess
    plain = CliRunner().invoke(app, ["models"], env={"COLUMNS": "60"})
    assert f"--preprocess {lite0}" in plain.output  # never cut at the terminal's width
