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


def test_evaluate_cli_with_lite0_and_a_corrupt_file(tmp_path, imagenet_dir):
    import shutil

    d = tmp_path / "data"
    d.mkdir()
    for f in sorted(imagenet_dir.iterdir())[:6]:
        shutil.copy(f, d / f.name)
    (d / "n01440764_zzz_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(d),
            "--codec",
            "standard:10,50,90",
            "--codec",
            "standard:10,50,90@4:4:4",
            "--out",
            str(out),
            "--bootstrap",
            "20",
            "--select-lambdas",
            "0.001,0.1",
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    assert r["settings"]["layout"] == "wnid" and r["settings"]["n_images"] == 6 and r["settings"]["labeled"]
    assert len(r["failures"]) == 1 and "broken" in r["failures"][0][0]
    assert [c["name"] for c in r["curves"]] == [
        "standard 4:2:0",
        "standard 4:4:4",
        "standard 4:2:0 per-image",
        "standard 4:4:4 per-image",
        "all settings per-image",
    ]
    assert all(p["lam"] in (0.001, 0.1) for c in r["curves"][2:] for p in c["points"])
    assert "all settings per-image vs standard 4:2:0" in (out / "report.md").read_text()
    assert "broken" in res.stderr
    for f in ("curves.png", "report.md", "report.html"):
        assert (out / f).stat().st_size > 0


def test_evaluate_cli_errors_cleanly(tmp_path):
    res = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nope" in res.stderr
    res = runner.invoke(app, ["evaluate", "--data", str(tmp_path), "--codec", "bogus:1"])
    assert res.exit_code == 2 and "bogus" in res.stderr
    res = runner.invoke(app, ["evaluate", "--data", str(tmp_path), "--select-lambdas", "0.1,x"])
    assert res.exit_code == 2 and "--select-lambdas" in res.output


def test_demo_runs_ladder_and_deepn_on_bundled_photos(tmp_path):
    from dnnjpeg.codec import QuantTables

    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--limit", "4"])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "demo" / "results.json").read_text())
    names = ["standard 4:2:0", "standard 4:4:4", "deepn 4:2:0"]
    assert [c["name"] for c in r["curves"]] == names + [f"{n} per-image" for n in names] + ["all settings per-image"]
    # the per-image choice takes one of the ladder's files per image, fewer bits as λ grows
    ladder = np.array([p["per_image"]["bits"] for p in r["curves"][0]["points"]])
    chosen = np.array([p["per_image"]["bits"] for p in r["curves"][3]["points"]])
    assert all(np.isin(chosen[:, i], ladder[:, i]).all() for i in range(ladder.shape[1]))
    assert len(chosen) >= 2 and np.all(np.diff(chosen.sum(1)) < 0)
    assert r["settings"]["accuracy_metric"] == "agreement" and r["settings"]["n_images"] == 4
    t = QuantTables.load(tmp_path / "demo" / "deepn.json")
    assert t.luma[0, 0] <= t.luma[7, 7]  # high-variance DC gets the finest step
    assert (tmp_path / "demo" / "report.html").exists() and "only" in res.stderr


def test_design_cli_writes_table_and_eval_report(tmp_path):
    from dnnjpeg.codec import QuantTables
    from dnnjpeg.models import register

    from .evaluate.tiny import tiny_model, write_images

    register("tiny-test", tiny_model)
    write_images(tmp_path / "d", 30, size=(40, 40), seed=2)
    out = tmp_path / "t.json"
    res = runner.invoke(
        app,
        [
            "design",
            "--method",
            "bandit",
            "--data",
            str(tmp_path / "d"),
            "--model",
            "tiny-test",
            "--budget",
            "8",
            "--trial-images",
            "6",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "rep"),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    t = QuantTables.load(out)
    assert (
        doc["design"]["method"] == "bandit"
        and doc["design"]["split"] == "design"
        and len(doc["design"]["history"]) == 8
    )
    r = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert r["settings"]["split"] == "eval"
    eval_paths = {p.split("/")[-1] for p in r["pristine"]["per_image"]["path"]}
    from dnnjpeg.data import split_of

    assert eval_paths and all(split_of(p) == "eval" for p in eval_paths)
    assert r["curves"][1]["points"][4]["tables"] == t.scaled(1.0).to_dict()
    res = runner.invoke(app, ["design", "--method", "nope", "--data", str(tmp_path / "d"), "--model", "tiny-test"])
    assert res.exit_code == 2 and "nope" in res.stderr


def test_design_cli_gradient(tmp_path):
    from dnnjpeg.codec import QuantTables
    from dnnjpeg.models import register

    from .evaluate.tiny import tiny_model, write_images

    register("tiny-test", tiny_model)
    write_images(tmp_path / "d", 24, size=(40, 40), seed=3)
    out = tmp_path / "g.json"
    res = runner.invoke(
        app,
        [
            "design",
            "--method",
            "gradient",
            "--data",
            str(tmp_path / "d"),
            "--model",
            "tiny-test",
            "--trial-images",
            "6",
            "--lambdas",
            "0.1,0.01",
            "--epochs",
            "1",
            "--basis",
            "smooth",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["design"]["method"] == "gradient" and doc["design"]["basis"] == "smooth"
    assert [h["lam"] for h in doc["design"]["history"]] == [0.1, 0.01]
    QuantTables.load(out)
    res = runner.invoke(
        app,
        [
            "design",
            "--method",
            "gradient",
            "--data",
            str(tmp_path / "d"),
            "--model",
            "tiny-test",
            "--at",
            "original",
            "--trial-images",
            "6",
            "--out",
            str(tmp_path / "x.json"),
        ],
    )
    assert res.exit_code == 2 and "--at input" in res.stderr and not (tmp_path / "x.json").exists()


def test_design_cli_fisher_reports_its_sweep(tmp_path):
    from dnnjpeg.models import register

    from .evaluate.tiny import tiny_model, write_images

    register("tiny-test", tiny_model)
    write_images(tmp_path / "d", 30, size=(40, 40), seed=4)
    out = tmp_path / "f.json"
    res = runner.invoke(
        app,
        [
            "design",
            "--method",
            "fisher",
            "--data",
            str(tmp_path / "d"),
            "--model",
            "tiny-test",
            "--gamma",
            "0.8",
            "--trial-images",
            "6",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "rep"),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    sweep = doc["design"]["sweep"]
    assert doc["design"]["gamma"] == 0.8 and len(sweep) == 8
    assert [p["target_bpp"] for p in sweep] == sorted(p["target_bpp"] for p in sweep)
    rep = json.loads((tmp_path / "rep" / "results.json").read_text())
    # the report judges the designed family itself: one eval point per sweep table, unscaled
    test = [c for c in rep["curves"] if c["name"].startswith("f ")][0]
    assert len(test["points"]) == len(sweep)


def test_presets_cli_lists_every_preset_with_its_measured_bd_rate(tmp_path):
    from dnnjpeg.presets import available_presets, load_preset, preset_info

    res = runner.invoke(app, ["presets", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == available_presets()
    for r in rows:
        info = preset_info(r["name"])
        assert r["subsampling"] == info["design"]["subsampling"] and r["model"] == info["measured"]["settings"]["model"]
        assert r["bd_rate"] == info["measured"]["comparison"]["bd_rate"]
    text = runner.invoke(app, ["presets"]).stdout
    assert all(n in text for n in available_presets())
    name = available_presets()[0]
    one = runner.invoke(app, ["presets", name, "--plot", str(tmp_path / "c.png")])
    assert one.exit_code == 0, one.output
    first_row = " ".join(f"{int(x):3d}" for x in load_preset(name).luma[0])
    assert first_row in one.stdout  # the tables, natural order
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(app, ["presets", "no-such-preset"])
    assert bad.exit_code == 2 and "available" in bad.stderr


# -- reliability: clear errors, never a traceback ----------------------------------------------

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402


def _clean_error(res, *words):
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit), res.exception  # no traceback
    for w in words:
        assert w in res.output, res.output


def _src(tmp_path, n=2):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for i in range(n):
        (src / f"{i}.jpg").write_bytes(encode(noise_image(32, 48, seed=i), QuantTables.standard(90)))
    return src


@pytest.mark.parametrize(
    "text, words",
    [
        ("null", ["t.json", "must be an object"]),
        ("[1,2,3]", ["t.json", "must be an object"]),
        ('{"luma": [[true' + ",1" * 7 + "]" + ",[1,1,1,1,1,1,1,1]" * 7 + "]}", ["entries must be numbers"]),
        ('{"format": "something/9", "luma": 1, "chroma": 1}', ["unknown format"]),
        ("{", ["Expecting property name"]),
    ],
)
def test_bad_table_json_is_one_clear_error(tmp_path, text, words):
    (tmp_path / "t.json").write_text(text)
    res = runner.invoke(
        app, ["compress", str(_src(tmp_path)), str(tmp_path / "dst"), "--tables", str(tmp_path / "t.json")]
    )
    _clean_error(res, "cannot read quantization tables", *words)


def test_survey_of_an_empty_folder_and_an_out_that_is_a_file(tmp_path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["survey", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), "--no-umap"])
    _clean_error(res, "no files found")
    assert not (tmp_path / "out").exists()  # no partial output folder
    (tmp_path / "file").write_text("mine")
    res = runner.invoke(app, ["survey", str(_src(tmp_path)), "--out", str(tmp_path / "file"), "--no-umap"])
    _clean_error(res, "not a folder")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--scale", "inf"], ["--scale"]),
        (["--scale", "1e9"], ["--scale"]),
        (["--resume", "--overwrite"], ["not both"]),
        (["--lam", "0.01"], ["per-image chooser"]),
    ],
)
def test_compress_refuses_contradictory_or_absurd_arguments(tmp_path, args, words):
    t = QuantTables.standard(50).save(tmp_path / "t.json")
    res = runner.invoke(app, ["compress", str(_src(tmp_path)), str(tmp_path / "dst"), "--tables", str(t), *args])
    _clean_error(res, *words)
    assert not (tmp_path / "dst").exists()


def test_compress_lam_with_target_is_refused(tmp_path):
    res = runner.invoke(
        app,
        [
            "compress",
            str(_src(tmp_path)),
            str(tmp_path / "dst"),
            "--choose",
            "rate",
            "--family",
            "preset:efficientnet-lite0-420-original-sweep",
            "--lam",
            "0.01",
            "--target-bpp",
            "1",
        ],
    )
    _clean_error(res, "--lam and --target-bpp")


def test_compress_with_nothing_written_prints_no_nan(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff nothing")
    t = QuantTables.standard(50).save(tmp_path / "t.json")
    res = runner.invoke(app, ["compress", str(src), str(tmp_path / "dst"), "--tables", str(t)])
    assert res.exit_code == 1 and "nan" not in res.output and "bytes 0 → 0" in res.output and "bad.jpg" in res.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--bootstrap", "-1"], ["--bootstrap"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--scales", "1,inf"], ["--scales"]),
    ],
)
def test_evaluate_checks_arguments_before_loading_the_model(tmp_path, monkeypatch, args, words):
    import dnnjpeg.models

    def no(*_a, **_k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(dnnjpeg.models, "load_model", no)
    res = runner.invoke(app, ["evaluate", "--data", str(_src(tmp_path)), "--out", str(tmp_path / "o"), *args])
    _clean_error(res, *words)


def _small_disk(tmp_path, kib: int, args: list[str], then: str) -> subprocess.CompletedProcess:
    """Run ``dnnjpeg ARGS`` with ``tmp_path/full`` a tmpfs of ``kib`` KiB (a private mount), then
    the Python snippet ``then`` in the same mount; skip where mounts cannot be made."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small file system")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {tmp_path}"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {probe.stderr.decode().strip()}")
    full = tmp_path / "full"
    full.mkdir()
    script = f'mount -t tmpfs -o size={kib}k tmpfs "$1" && shift && "$@"; echo "rc=$?"; {sys.executable} -c "$CHECK"'
    env = {**__import__("os").environ, "CHECK": then, "COLUMNS": "300"}
    return subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            str(full),
            sys.executable,
            "-c",
            "from dnnjpeg.cli import main; main()",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_survey_on_a_full_disk_ends_in_one_clear_error(tmp_path):
    src = _src(tmp_path, 6)
    out = tmp_path / "full" / "out"
    check = (
        f"import os, pandas as pd; fs = sorted(os.listdir('{out}')); print('files', fs); "
        f"print('rows', len(pd.read_parquet('{out}/survey.parquet')) if 'survey.parquet' in fs else -1)"
    )
    # 36 KiB: the folder's marker (one 4 KiB page) and the table fit, the plots do not
    r = _small_disk(tmp_path, 36, ["survey", str(src), "--out", str(out), "--no-umap"], check)
    text = r.stdout + r.stderr
    assert "Traceback" not in text and "rc=2" in text and "No space left on device" in text, text
    assert "rows 6" in text, text  # the table written before the disk filled is whole


def test_evaluate_on_a_full_disk_ends_in_one_clear_error(tmp_path):
    src = _src(tmp_path, 4)
    out = tmp_path / "full" / "out"
    check = (
        f"import os, json; fs = sorted(os.listdir('{out}')); print('files', fs); "
        f"print('images', len(json.load(open('{out}/results.json'))['curves'][0]['points'][0]['per_image']['bits']) "
        f"if 'results.json' in fs else -1)"
    )
    r = _small_disk(
        tmp_path,
        40,
        ["evaluate", "--data", str(src), "--codec", "standard:50,90", "--out", str(out), "--bootstrap", "0"],
        check,
    )
    text = r.stdout + r.stderr
    assert "Traceback" not in text and "rc=2" in text and "No space left on device" in text, text
    assert "images 4" in text, text


def test_compress_on_a_full_disk_ends_in_one_clear_error(tmp_path):
    src = _src(tmp_path, 1)
    for i in range(40):  # incompressible enough that the 64 KiB disk fills part way through
        (src / f"n{i:02d}.jpg").write_bytes(
            encode(np.random.default_rng(i).integers(0, 256, (64, 64, 3), np.uint8), QuantTables.standard(100))
        )
    t = QuantTables.standard(100).save(tmp_path / "t.json")
    dst = tmp_path / "full" / "dst"
    check = (
        f"import os; from dnnjpeg.codec import decode_file; fs = [f for f in os.listdir('{dst}') if "
        "f.endswith('.jpg')]; "
        f"[decode_file(os.path.join('{dst}', f)) for f in fs]; print('whole', len(fs))"
    )
    r = _small_disk(tmp_path, 64, ["compress", str(src), str(dst), "--tables", str(t), "--workers", "2"], check)
    text = r.stdout + r.stderr
    assert "Traceback" not in text and "rc=2" in text and "No space left on device" in text, text
    assert text.count("No space left") == 1, text  # one error, not one per file
    assert "whole " in text and int(text.split("whole ")[1].split()[0]) > 0, text


def test_compress_refuses_a_jpegli_family(tmp_path):
    res = runner.invoke(
        app, ["compress", str(_src(tmp_path)), str(tmp_path / "dst"), "--choose", "rate", "--family", "jpegli"]
    )
    _clean_error(res, "jpegli is a codec for evaluate")


def test_design_flags_come_from_the_registry_and_a_foreign_flag_is_refused(tmp_path):
    import dataclasses

    from dnnjpeg.design import designers

    help_text = runner.invoke(app, ["design", "--help"], env={"COLUMNS": "300"}).output
    for name, d in designers().items():
        assert f"{name}: " in help_text  # each method listed with its summary
        for f in dataclasses.fields(d.options):
            if f.metadata.get("cli", True):
                assert "--" + f.name.replace("_", "-") in help_text, (name, f.name)
    res = runner.invoke(app, ["design", "--method", "fisher", "--data", str(_src(tmp_path)), "--lambdas", "0.1"])
    _clean_error(res, "--lambdas: not an option of fisher", "--targets")
    res = runner.invoke(app, ["design", "--method", "gradient", "--data", str(tmp_path), "--objective", "pareto"])
    _clean_error(res, "--objective pareto is for --method bayes")


def _commands():
    import click
    import typer

    def walk(c, path):
        if isinstance(c, click.Group):
            for n, sub in c.commands.items():
                yield from walk(sub, [*path, n])
        else:
            yield path, c

    return list(walk(typer.main.get_command(app), []))


def test_every_option_of_every_command_has_help_shown_as_written():
    """Help is plain text: every option has some, rich markup eats none of it ([ray] stays), and no reST
    literal (``x``, :func:) reaches the terminal."""
    import re

    missing, eaten, rest = [], [], []
    for path, cmd in _commands():
        out = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"}).output
        flat = " ".join(out.replace("│", " ").split())
        for p in cmd.params:
            h = getattr(p, "help", None) or ""
            if not h.strip():
                missing.append((path, p.name))
            for m in re.findall(r"\[[^\]]*\]", h.replace("\\[", "[")):
                if " ".join(m.split()) not in flat:
                    eaten.append((path, m))
        if "``" in out or ":func:" in out or ":class:" in out:
            rest.append(path)
    assert missing == [] and eaten == [] and rest == []
    assert "dnnjpeg[ray]" in CliRunner().invoke(app, ["compress", "--help"], env={"COLUMNS": "250"}).output


def test_command_list_lines_are_whole_sentences():
    """A docstring's source line breaks do not break the command list mid-sentence."""
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400"}).output
    line = next(ln for ln in out.splitlines() if "│ compress" in ln)
    assert "each image's own choice (by rate, a QNet or the network in the loop)" in line


def test_demo_conclusions_judge_on_kl_and_say_what_few_images_cannot_show():
    from dnnjpeg.demo import conclusions

    rows = [("a", -40.0, [-50.0, -30.0]), ("b", 20.0, [-5.0, 45.0]), ("c", None, [None, None])]
    comparisons = [{"test": t, "reference": "r", "bd_rate_kl": v, "bd_rate_kl_ci": ci} for t, v, ci in rows]
    r = {"settings": {"n_images": 14, "accuracy_metric": "agreement"}, "comparisons": comparisons}
    lines = conclusions(r)
    assert "cannot show" in lines[0] and "7 points" in lines[0] and "not ImageNet" in lines[1]
    assert lines[2] == "a vs r: 40% fewer bits at equal KL on these images [-50, -30]."
    assert lines[3].startswith("b vs r: no difference shown") and "no conclusion" in lines[4]
