import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.choosers import FixedTables, RateChoice, make_chooser
from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables, decode_file, parse_header
from dnnjpeg.compress import SETTINGS_FILE, compress_tree
from dnnjpeg.families import TableFamily

from .codec.makers import noise_image, pillow_jpeg


def _tree(root: Path, n: int = 12) -> Path:
    for i in range(n):
        sub = root / f"class{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        if i % 4 == 0:
            Image.fromarray(noise_image(40, 56, seed=i)).save(sub / f"img{i}.png")
        elif i % 4 == 1:
            (sub / f"img{i}.JPEG").write_bytes(pillow_jpeg(noise_image(30, 20, seed=i, channels=1), quality=90))
        else:
            (sub / f"img{i}.jpg").write_bytes(pillow_jpeg(noise_image(64, 48, seed=i), quality=95))
    (root / "class0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nope")
    return root


def _snapshot(root: Path) -> dict:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_compress_mirrors_tree_with_exact_tables_and_leaves_src_alone(tmp_path):
    src = _tree(tmp_path / "src")
    before = _snapshot(src)
    rng = np.random.default_rng(0)
    t = QuantTables(rng.integers(2, 90, (8, 8)), rng.integers(2, 120, (8, 8)))
    rep = compress_tree(src, tmp_path / "dst", FixedTables(t, "4:2:0"), scale=1.5, workers=2)
    assert _snapshot(src) == before
    assert rep.written == 12 and len(rep.failures) == 1 and "broken.jpg" in rep.failures[0][0]
    outs = sorted(p for p in (tmp_path / "dst").rglob("*") if p.name != SETTINGS_FILE)
    files = [p for p in outs if p.is_file()]
    assert len(files) == 12 and all(p.suffix.lower() in (".jpg", ".jpeg") for p in files)
    assert (tmp_path / "dst" / "class0" / "img0.jpg").exists() and (tmp_path / "dst" / "class1" / "img1.JPEG").exists()
    for p in files:
        h = parse_header(p)
        assert h.mode == "baseline"
        if h.is_grayscale:
            assert np.array_equal(h.luma_table, t.scaled(1.5).luma)
        else:
            assert h.quant_tables() == t.scaled(1.5) and h.subsampling == "4:2:0"
    assert rep.bytes_after == sum(p.stat().st_size for p in files)


def test_refuses_overlap_and_existing_outputs(tmp_path):
    src = _tree(tmp_path / "src", 4)
    t = QuantTables.standard(50)
    with pytest.raises(ValueError, match="overlaps"):
        compress_tree(src, src / "out", t)
    with pytest.raises(ValueError, match="overlaps"):
        compress_tree(src, tmp_path, t)
    compress_tree(src, tmp_path / "dst", t, workers=1)
    rep = compress_tree(src, tmp_path / "dst", t, workers=1)
    assert rep.written == 0 and all("exists" in m for _, m in rep.failures if "broken" not in _)
    rep = compress_tree(src, tmp_path / "dst", t, workers=1, resume=True)
    assert rep.written == 0 and rep.skipped == 4


def test_kill_leaves_only_complete_files_and_resume_finishes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    big = noise_image(600, 800, seed=1)
    for i in range(60):
        Image.fromarray(np.roll(big, i, axis=1)).save(src / f"{i:03d}.png", compress_level=0)
    t = QuantTables.standard(70)
    t.save(tmp_path / "t.json")
    cmd = [
        str(Path(sys.executable).parent / "dnnjpeg"),
        "compress",
        str(src),
        str(tmp_path / "dst"),
        "--tables",
        str(tmp_path / "t.json"),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "dst").rglob("*.jpg"))) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list((tmp_path / "dst").rglob("*.jpg"))
    assert 5 <= len(done) < 60
    for p in done:  # every visible output is a complete JPEG
        assert decode_file(p).shape == (600, 800, 3)
    res = CliRunner().invoke(app, cmd[1:] + ["--resume"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "dst").rglob("*.jpg"))) == 60
    assert not [p for p in (tmp_path / "dst").rglob("*") if p.name.startswith(".") and p.name != SETTINGS_FILE]
    assert f"{len(done)} skipped" in res.stdout.replace(",", "")


def test_cli_compress_exit_codes(tmp_path):
    src = _tree(tmp_path / "src", 4)
    QuantTables.standard(40).save(tmp_path / "t.json")
    res = CliRunner().invoke(
        app, ["compress", str(src), str(tmp_path / "dst"), "--tables", str(tmp_path / "t.json"), "--workers", "1"]
    )
    assert res.exit_code == 1 and "broken.jpg" in res.stderr and "4 written" in res.stdout
    (src / "class0" / "broken.jpg").unlink()
    res = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst2"), "--tables", str(tmp_path / "t.json")])
    assert res.exit_code == 0


# -- reliability (each finding of the hostile-tree review) ------------------------------------


def test_overwrite_never_writes_into_src_through_a_link_in_dst(tmp_path):
    src, dst = tmp_path / "s", tmp_path / "d"
    (src / "x").mkdir(parents=True)
    for n in ("a", "b"):
        (src / "x" / f"{n}.jpg").write_bytes(pillow_jpeg(noise_image(32, 40, seed=ord(n)), quality=90))
    dst.mkdir()
    (dst / "x").symlink_to("../s/x")
    before = _snapshot(src)
    for kw in ({"overwrite": True}, {"resume": True}):
        rep = compress_tree(src, dst, QuantTables.standard(30), workers=1, **kw)
        assert rep.written == 0 and rep.skipped == 0, kw  # resume does not take SRC's files as valid outputs
        assert len(rep.failures) == 2 and all("symbolic link" in m for _, m in rep.failures)
        assert _snapshot(src) == before
    # the output file itself a link into SRC: not replaced, not followed
    (dst / "x").unlink()
    (dst / "x").mkdir()
    (dst / "x" / "a.jpg").symlink_to(src / "x" / "a.jpg")
    rep = compress_tree(src, dst, QuantTables.standard(30), workers=1, overwrite=True)
    assert rep.written == 1 and "symbolic link" in rep.failures[0][1] and (dst / "x" / "a.jpg").is_symlink()
    assert _snapshot(src) == before


def test_outputs_take_the_mode_cp_would_give(tmp_path):
    src = _tree(tmp_path / "src", 3)
    compress_tree(src, tmp_path / "dst", QuantTables.standard(50), workers=1)
    mask = os.umask(0)
    os.umask(mask)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "dst").rglob("*.jpg")}
    assert modes == {0o666 & ~mask}


def test_resume_with_other_settings_is_refused(tmp_path):
    src = _tree(tmp_path / "src", 6)
    dst = tmp_path / "dst"
    compress_tree(src, dst, QuantTables.standard(60), workers=1)
    first = {p: p.read_bytes() for p in dst.rglob("*") if p.is_file() and p.name != SETTINGS_FILE}
    with pytest.raises(ValueError, match="other settings"):
        compress_tree(src, dst, QuantTables.standard(20), workers=1, resume=True)
    with pytest.raises(ValueError, match="other settings"):
        compress_tree(src, dst, QuantTables.standard(60), scale=2.0, workers=1, resume=True)
    assert {p: p.read_bytes() for p in first} == first  # nothing touched
    rep = compress_tree(src, dst, QuantTables.standard(60), workers=1, resume=True)  # same settings: fine
    assert rep.skipped == len(first) and rep.written == 0
    rep = compress_tree(src, dst, QuantTables.standard(20), workers=1, overwrite=True)
    assert rep.written == len(first)
    assert all((parse_header(p).luma_table == QuantTables.standard(20).luma).all() for p in first)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"scale": float("inf")}, "scale"),
        ({"scale": 1e9}, "scale"),
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"resume": True, "overwrite": True}, "not both"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tmp_path, kw, match):
    src = _tree(tmp_path / "src", 2)
    with pytest.raises(ValueError, match=match):
        compress_tree(src, tmp_path / "dst", QuantTables.standard(50), workers=1, **kw)
    assert not (tmp_path / "dst").exists()


def test_lambda_and_target_together_are_refused():
    fam = TableFamily.standard((20, 80)).with_kappa([0.1, 0.01])
    with pytest.raises(ValueError, match="not both"):
        RateChoice(fam, lam=0.01, target_bpp=1.0)
    with pytest.raises(ValueError, match="both set λ"):
        make_chooser(family=[fam], by_rate=True, lam=0.01, target_bpp=1.0)


def test_target_out_of_reach_says_the_smallest_reachable_rate(tmp_path):
    src = _tree(tmp_path / "src", 6)
    fam = TableFamily.standard((20, 80)).with_kappa([0.1, 0.01])
    with pytest.raises(ValueError, match=r"out of reach: the smallest files these tables make are (\d+\.\d+) bpp") as e:
        compress_tree(src, tmp_path / "dst", RateChoice(fam, target_bpp=0.01), workers=1)
    floor = float(str(e.value).split("make are ")[1].split(" bpp")[0])
    assert not list((tmp_path / "dst").rglob("*.jpg"))
    rep = compress_tree(src, tmp_path / "dst", RateChoice(fam, target_bpp=floor + 1e-3), workers=1)
    assert rep.written == 12 // 2 and rep.bpp <= floor + 1e-3


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the pool's workers")
def test_sigkill_of_compress_ends_its_pool_workers(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    img = pillow_jpeg(noise_image(600, 800, seed=1), quality=95)
    for i in range(200):
        (src / f"{i:03d}.jpg").write_bytes(img)
    p = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dnnjpeg.cli import main; main()",
            "compress",
            str(src),
            str(tmp_path / "dst"),
            "--tables",
            str(QuantTables.standard(50).save(tmp_path / "t.json")),
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = _children(p.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool never started"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, "pool workers outlived a SIGKILLed compress"


def test_resize_stores_every_image_at_the_model_geometry(tmp_path):
    """--resize S: each output is the classifier's own crop of its source (shorter side to S/0.875,
    centre S×S) on whole 4:2:0 blocks; gray stays gray; a DST made without it is not mixed with it."""
    from dnnjpeg.compress import at_model_size
    from dnnjpeg.models import Preprocess

    src = _tree(tmp_path / "src")
    before = _snapshot(src)
    t = QuantTables.standard(90)
    rep = compress_tree(src, tmp_path / "dst", t, workers=2, resize=32)
    assert rep.written == 12 and len(rep.failures) == 1
    for out in (tmp_path / "dst").rglob("*.*"):
        if out.name == SETTINGS_FILE:
            continue
        h = parse_header(out)
        assert (h.width, h.height) == (32, 32) and np.array_equal(h.quant_tables().luma, t.luma)
    rgb = noise_image(40, 56, seed=0)
    want = Preprocess(size=32, resize=round(32 / 0.875)).geometry(rgb)
    assert np.array_equal(at_model_size(rgb, 32), want)
    gray = noise_image(30, 20, seed=1, channels=1)
    g = at_model_size(gray, 32)
    assert g.shape == (32, 32) and np.array_equal(g, Preprocess(32, 37).geometry(gray)[..., 0])
    assert _snapshot(src) == before
    with pytest.raises(ValueError, match="other settings"):
        compress_tree(src, tmp_path / "dst", t, workers=2, resume=True)
    with pytest.raises(ValueError, match="multiple of 16"):
        compress_tree(src, tmp_path / "dst2", t, resize=30)
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst3"), "--resize", "40"])
    assert r.exit_code != 0 and "multiple of 16" in r.output


def test_resize_short_keeps_the_whole_image_at_the_classifiers_resolution(tmp_path, kodak_dir):
    """--resize short:N: shorter side down to N (never up), aspect kept, with every chooser; a bit budget
    counts bits per source pixel, so the smaller outputs are charged fairly."""
    from PIL import Image

    from dnnjpeg.choosers.build import chooser_from_decisions
    from dnnjpeg.codec import encode, resize_shorter

    src = tmp_path / "src"
    src.mkdir()
    img = np.asarray(Image.open(kodak_dir / "kodim13.png").convert("RGB"))
    shapes = {"wide": (96, 160), "tall": (150, 90), "small": (40, 60)}
    for name, (h, w) in shapes.items():
        (src / f"{name}.jpg").write_bytes(encode(np.ascontiguousarray(img[:h, :w]), QuantTables.standard(95)))
    ch = chooser_from_decisions("network", "round", target_bpp=1.0)
    rep = compress_tree(src, tmp_path / "dst", ch, workers=1, resize="short:64")
    assert rep.written == 3 and not rep.failures
    bits = 0
    for name, (h, w) in shapes.items():
        out = parse_header(tmp_path / "dst" / f"{name}.jpg")
        assert (out.height, out.width) == resize_shorter(np.zeros((h, w), np.uint8), 64).shape
        bits += 8 * (tmp_path / "dst" / f"{name}.jpg").stat().st_size
    assert parse_header(tmp_path / "dst" / "small.jpg").width == 60  # never enlarged
    per_source = bits / sum(h * w for h, w in shapes.values())  # the stored images' pixels, not the outputs'
    assert rep.bpp == pytest.approx(per_source) and per_source <= 1.0
    rep = compress_tree(src, tmp_path / "fixed", QuantTables.standard(50), workers=1, resize="short:48")
    assert parse_header(tmp_path / "fixed" / "tall.jpg").width == 48
    for bad in ("short:x", "short:4", "long:64"):
        with pytest.raises(ValueError, match="short:N"):
            compress_tree(src, tmp_path / "bad", QuantTables.standard(50), resize=bad)
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "cli"), "--resize", "short:64", "--choose",
                                 "rate", "--target-bpp", "0.8", "--workers", "1", "--bpp-tolerance", "5"])  # fmt: skip
    assert r.exit_code == 0 and "3 written" in r.output, r.output  # 3 files: the steps are coarse
    assert parse_header(tmp_path / "cli" / "wide.jpg").height == 64


def test_resolution_is_a_member_the_network_can_choose(tmp_path, kodak_dir):
    """--family F --family F+resize:N: each image stored as it is or smaller, whichever the network prefers."""
    from PIL import Image

    from dnnjpeg.choosers.build import chooser_from_decisions
    from dnnjpeg.codec import encode

    src = tmp_path / "src"
    src.mkdir()
    img = np.asarray(Image.open(kodak_dir / "kodim05.png").convert("RGB"))
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(encode(np.ascontiguousarray(img[100 * i : 100 * i + 96, :160]),
                                              QuantTables.standard(95)))  # fmt: skip
    ch = chooser_from_decisions("network", "round", family=["standard:40,80", "standard:40,80+resize:48"], lam=5.0)
    assert [ch.member_label(k) for k in range(4)] == [
        "#0 q=40",
        "#1 q=80",
        "#2 q=40 resized to 48",
        "#3 q=80 resized to 48",
    ]
    rep = compress_tree(src, tmp_path / "dst", ch, workers=1)
    assert rep.written == 3 and sum(rep.members.values()) == 3
    for i in range(3):
        h = parse_header(tmp_path / "dst" / f"{i}.jpg")
        assert (h.height, h.width) in ((96, 160), (48, 80))
    assert any(k >= 2 for k in rep.members)  # at a high λ the smaller files win


def test_tables_take_a_preset_name(tmp_path):
    from dnnjpeg.presets import load_preset

    src = _tree(tmp_path / "src")
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "dst"), "--workers", "1",
                                 "--tables", "preset:efficientnet-lite0-420"])  # fmt: skip
    assert "12 written" in r.output, r.output
    out = next(p for p in (tmp_path / "dst").rglob("*.*") if p.name != SETTINGS_FILE)
    assert parse_header(out).quant_tables() == load_preset("efficientnet-lite0-420")
    r = CliRunner().invoke(app, ["compress", str(src), str(tmp_path / "d2"), "--tables", "preset:nope"])
    assert r.exit_code == 2 and "unknown preset 'nope'" in r.output


def test_compress_help_names_the_two_decisions_in_at_most_25_options():
    import re

    res = CliRunner().invoke(app, ["compress", "--help"], env={"COLUMNS": "200"})
    flags = set(re.findall(r"^│ (--[a-z-]+)", res.stdout, re.M))
    # 18 before the user's-path flags (--check, --allow-larger, --strip-metadata, --copy-other, --preprocess) and
    # the guarantee (--keep-prediction, --max-kl)
    assert {"--choose", "--levels", "--family", "--lam", "--target-bpp"} <= flags and len(flags) <= 25, flags


def test_levels_compose_with_every_family_chooser(tmp_path, monkeypatch):
    """--levels sdq:W with a per-image --choose gives each member SDQ levels: the same files as the
    family spelled sdq:W:FAMILY; pairs that do not make sense are one line saying why."""
    import dnnjpeg.models as models

    from .evaluate.tiny import tiny_model

    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda n: tiny_model() if n == "tiny" else real(n))
    src = _tree(tmp_path / "src", 3)
    (src / "class0" / "broken.jpg").unlink()
    run = CliRunner().invoke
    a = run(app, ["compress", str(src), str(tmp_path / "a"), "--choose", "network:tiny", "--levels", "sdq:mse",
                  "--family", "standard:30,70", "--lam", "0.01", "--workers", "1"])  # fmt: skip
    b = run(app, ["compress", str(src), str(tmp_path / "b"), "--choose", "network:tiny", "--family",
                  "sdq:mse:standard:30,70", "--lam", "0.01", "--workers", "1"])  # fmt: skip
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.suffix in (".jpg", ".JPEG"))
    assert len(files) == 3
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    plain = run(app, ["compress", str(src), str(tmp_path / "c"), "--choose", "network:tiny", "--family",
                      "standard:30,70", "--lam", "0.01", "--workers", "1"])  # fmt: skip
    assert plain.exit_code == 0
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files)
    bad = run(app, ["compress", str(src), str(tmp_path / "d"), "--choose", "network:tiny", "--levels", "sdq:mse",
                    "--family", "sdq:mse:standard"])  # fmt: skip
    assert bad.exit_code == 2 and "give the family's plain tables" in bad.output


def test_info_and_survey_read_a_compressed_tree_without_its_settings_record(tmp_path):
    src = _tree(tmp_path / "src")
    compress_tree(src, tmp_path / "dst", QuantTables.standard(60), workers=1)
    assert (tmp_path / "dst" / SETTINGS_FILE).is_file()
    r = CliRunner().invoke(app, ["info", str(tmp_path / "dst")])
    assert SETTINGS_FILE not in r.output and "failed" not in r.output, r.output
    r = CliRunner().invoke(app, ["survey", str(tmp_path / "dst"), "--out", str(tmp_path / "sv"), "--no-umap"])
    assert r.exit_code == 0 and "errors none" in r.output and SETTINGS_FILE not in r.output, r.output
