"""compress with soft-decision quantization (SDQChoice, --levels sdq:…): ordinary files with the given tables."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.choosers import SDQChoice, make_chooser
from dnnjpeg.choosers.own import SDQ_ALPHAS
from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables, decode_file, encode, parse_header
from dnnjpeg.compress import compress_tree
from dnnjpeg.presets import load_preset
from dnnjpeg.sdq.encode import fisher_weights, sdq_encode, table_lambda


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
    # `--levels sdq:fisher` alone: the shipped table and weights, λ from the table (a fresh install needs nothing else)
    r = CliRunner().invoke(app, ["compress", str(tmp_path / "src"), str(tmp_path / "d2"), "--levels", "sdq:fisher",
                                 "--workers", "1"])  # fmt: skip
    assert r.exit_code == 0 and "4 written" in r.output, r.output
    shipped = load_preset("efficientnet-lite0-420-original")
    assert parse_header(tmp_path / "d2" / "1.jpg").quant_tables() == shipped
    lam = table_lambda(shipped, fisher_weights(), 0.01)
    assert (tmp_path / "d2" / "1.jpg").read_bytes() == sdq_encode(
        decode_file(tmp_path / "src" / "1.jpg"), shipped, lam, fisher_weights()
    )[0]
    for bad, msg in ((["--levels", "sdq:psnr"], "fisher, crop, gradient, mse"),
                     (["--levels", "sdq:mse", "--lam", "1", "--family", "standard"], "--family is for a per-image"),
                     (["--levels", "sdq:mse", "--choose", "qnet"], "a QNet predicts the KL of its own members"),
                     (["--levels", "sdq:mse", "--choose", "tablenet:x.pt"], "--levels round"),
                     (["--levels", "sdq:mse", "--lam", "1", "--target-bpp", "1"], "not both")):  # fmt: skip
        r = CliRunner().invoke(app, ["compress", str(tmp_path / "src"), str(tmp_path / "d3"), *bad])
        assert r.exit_code == 2 and msg in r.output, r.output
    bits, err = ch.measure(src0)  # the λ ladder a bit budget over the tree chooses from
    assert len(bits) == len(err) == len(SDQ_ALPHAS) and bits[0] == 8 * len(sdq_encode(src0, t, 0.0)[0])
    assert bits[-1] < bits[0] and err[-1] > err[0] >= 0


def test_a_cap_per_file_is_met_with_the_least_lambda(tmp_path, kodak_dir):
    _tree(tmp_path / "src", kodak_dir)
    t = QuantTables.standard(90)
    sizes = {}
    for bpp in (1.2, 0.8):
        rep = compress_tree(tmp_path / "src", tmp_path / f"b{bpp}", make_chooser(sdq="mse", tables=t, file_bpp=bpp),
                            workers=2)  # fmt: skip
        assert rep.written == 4 and not rep.failures
        for i in range(3):
            out = tmp_path / f"b{bpp}" / f"{i}.jpg"
            px = decode_file(tmp_path / "src" / f"{i}.jpg")
            data = out.read_bytes()
            assert 8 * len(data) <= bpp * px.shape[0] * px.shape[1]
            # the least λ: rounding (λ = 0) would not have fitted, and the file is not far below the budget
            assert 8 * len(sdq_encode(px, t, 0.0)[0]) > bpp * px.shape[0] * px.shape[1]
            assert 8 * len(data) > 0.9 * bpp * px.shape[0] * px.shape[1]
            sizes[bpp, i] = len(data)
    assert all(sizes[0.8, i] < sizes[1.2, i] for i in range(3))


def test_crop_weights_drop_what_the_model_never_sees(tmp_path, kodak_dir):
    """--levels sdq:crop: lite0's weights inside its centre crop, 0 outside: the outside blocks keep only DC."""
    img = np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))  # 768×512: lite0 reads the middle
    t = QuantTables.standard(90)
    data, _ = SDQChoice(t, "crop").encode(img)
    fisher, _ = SDQChoice(t, "fisher").encode(img)
    from dnnjpeg.codec.coefficients import read_coefficients

    p = tmp_path / "c.jpg"
    p.write_bytes(data)
    y = read_coefficients(p).blocks[0]
    y = y.reshape(*y.shape[:2], 64)
    assert not np.any(y[:, :8, 1:]) and not np.any(y[:, -8:, 1:])  # left and right edges: DC only
    assert np.any(y[:, :8, 0])
    assert np.count_nonzero(y[:, 40:50, 1:]) > 100  # the middle keeps its detail
    assert len(data) < 0.8 * len(fisher)
