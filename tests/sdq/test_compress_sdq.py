"""compress with soft-decision quantization (SDQChoice, --sdq): ordinary files with the given tables."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.choosers import SDQChoice, make_chooser
from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables, decode_file, encode, parse_header
from dnnjpeg.compress import compress_tree
from dnnjpeg.presets import load_preset
from dnnjpeg.sdq.encode import fisher_weights, sdq_encode


def _tree(root, kodak_dir):
    root.mkdir()
    img = np.asarray(Image.open(kodak_dir / "kodim03.png").convert("RGB"))
    for i in range(3):
        crop = img[60 * i : 60 * i + 57, 40 * i : 40 * i + 83]
        (root / f"{i}.jpg").write_bytes(encode(crop, QuantTables.standard(95)))
    (root / "gray.jpg").write_bytes(encode(img[:40, :48, 1], QuantTables.standard(95)))
    return {p.name: p.read_bytes() for p in root.iterdir()}


def test_compress_writes_the_tables_with_searched_levels_and_the_cli(tmp_path, kodak_dir):
    before = _tree(tmp_path / "src", kodak_dir)
    t = QuantTables.standard(80)
    ch = make_chooser(sdq="mse", lam=100.0, tables=t)
    assert isinstance(ch, SDQChoice) and "mse" in ch.describe()
    rep = compress_tree(tmp_path / "src", tmp_path / "dst", ch, workers=2)
    assert rep.written == 4 and not rep.failures
    assert {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()} == before
    for name in before:
        out = tmp_path / "dst" / name
        assert parse_header(out).quant_tables().luma.tolist() == t.luma.tolist() and decode_file(out).size
    src0 = decode_file(tmp_path / "src" / "0.jpg")
    assert (tmp_path / "dst" / "0.jpg").read_bytes() == sdq_encode(src0, t, 100.0)[0]
    plain = encode(src0, t, "4:2:0", optimize=True)
    assert len((tmp_path / "dst" / "0.jpg").read_bytes()) < len(plain)  # the search spends fewer bits
    w = fisher_weights()
    assert w.shape == (3, 8, 8) and np.all(w > 0)
    r = CliRunner().invoke(app, ["compress", str(tmp_path / "src"), str(tmp_path / "d2"), "--sdq", "fisher",
                                 "--lam", "1e-6", "--workers", "1"])  # fmt: skip
    assert r.exit_code == 0 and "4 written" in r.output, r.output
    shipped = load_preset("efficientnet-lite0-420-original")
    assert parse_header(tmp_path / "d2" / "1.jpg").quant_tables() == shipped
    for bad, msg in ((["--sdq", "fisher"], "needs --lam"), (["--sdq", "psnr", "--lam", "1"], "fisher or mse"),
                     (["--sdq", "mse", "--lam", "1", "--family", "standard"], "fixed tables")):  # fmt: skip
        r = CliRunner().invoke(app, ["compress", str(tmp_path / "src"), str(tmp_path / "d3"), *bad])
        assert r.exit_code == 2 and msg in r.output, r.output
    with pytest.raises(ValueError, match="target-bpp"):
        ch.measure(src0)
