import json

import numpy as np
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables, encode

from .codec.makers import noise_image

runner = CliRunner()


def test_info_reports_fields_and_continues_past_bad_files(tmp_path):
    good = tmp_path / "a.jpg"
    good.write_bytes(encode(noise_image(30, 50), QuantTables.standard(37), subsampling="4:2:2"))
    (tmp_path / "b.JPEG").write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    (tmp_path / "c.jpg").write_bytes(b"")
    res = runner.invoke(app, ["info", str(tmp_path)])
    assert res.exit_code == 1
    line = [ln for ln in res.stdout.splitlines() if "a.jpg" in ln][0]
    assert "50x30" in line and "4:2:2" in line and "q=37" in line and "baseline" in line
    assert "NotAJpegError" in res.stderr and "b.JPEG" in res.stderr and "PNG" in res.stderr
    assert "c.jpg" in res.stderr and "2 file(s) failed" in res.stderr


def test_info_json_lines(tmp_path):
    p = tmp_path / "a.jpg"
    rng = np.random.default_rng(0)
    t = QuantTables(rng.integers(1, 256, (8, 8)), rng.integers(1, 256, (8, 8)))
    p.write_bytes(encode(noise_image(16, 24), t, subsampling="4:4:4"))
    res = runner.invoke(app, ["info", "--json", str(p), str(tmp_path / "missing.jpg")])
    assert res.exit_code == 1
    rows = [json.loads(ln) for ln in res.stdout.splitlines()]
    assert rows[0]["width"] == 24 and rows[0]["subsampling"] == "4:4:4"
    assert rows[0]["qtables"]["0"] == t.luma.tolist() and rows[0]["quality"]["exact"] is False
    assert rows[1]["error"] == "FileNotFoundError" and "missing.jpg" in rows[1]["message"]
