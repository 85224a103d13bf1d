"""The training command: paired runs, learned tables, clear errors."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.codec import QuantTables
from dnnjpeg.nn.train import TrainConfig, load_image_folder, summarize_runs, train_classifier

runner = CliRunner()


def _folder(root, n_per_class=24, seed=0):
    # two learnable classes: reddish vs bluish noise
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for k, name in enumerate(("red", "blue")):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n_per_class):
                a = rng.integers(0, 120, (32, 32, 3))
                a[..., 0 if k == 0 else 2] += 120
                Image.fromarray(a.astype(np.uint8)).save(d / f"{i}.png")
    return root


def test_train_compare_writes_paired_results_and_tables(tmp_path):
    data = _folder(tmp_path / "data")
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "train",
            str(data),
            "--compare",
            "--seeds",
            "0,1",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--width",
            "4",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads((out / "results.json").read_text())
    runs = r["runs"]
    assert [(x["config"]["seed"], x["config"]["jpeg_layer"]) for x in runs] == [
        (0, False),
        (0, True),
        (1, False),
        (1, True),
    ]
    d = r["summary"]["difference"]
    assert d["n"] == 2 and np.isclose(
        d["mean"], np.mean([runs[1]["test_top1"] - runs[0]["test_top1"], runs[3]["test_top1"] - runs[2]["test_top1"]])
    )
    assert r["summary"]["without_layer"]["mean"] > 75  # the two classes are easy: it did learn
    t = QuantTables.load(out / "tables-seed0.json")
    assert 1 <= t.luma.min() and t.chroma.max() <= 255


def test_same_seed_same_run(tmp_path):
    data = _folder(tmp_path / "data", 8)
    tr, te = load_image_folder(data / "train"), load_image_folder(data / "test")
    cfg = TrainConfig(epochs=1, batch_size=8, width=4, jpeg_layer=True)
    a, b = train_classifier(tr[:2], te[:2], cfg), train_classifier(tr[:2], te[:2], cfg)
    assert a["history"][0]["train_loss"] == b["history"][0]["train_loss"] and a["tables"] == b["tables"]


def test_train_errors_name_the_problem(tmp_path):
    data = _folder(tmp_path / "data", 4)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(data / "train" / "red" / "odd.png")
    res = runner.invoke(app, ["train", str(data), "--epochs", "1"])
    assert res.exit_code == 2 and "odd.png" in res.output and "differs" in res.output
    res = runner.invoke(app, ["train", str(tmp_path / "nowhere")])
    assert res.exit_code == 2


def test_summary_interval_covers_the_mean():
    runs = [
        {"config": {"seed": s, "jpeg_layer": v}, "test_top1": 50 + s + (0.5 * s if v else 0)}
        for s in range(3)
        for v in (False, True)
    ]
    d = summarize_runs(runs)["difference"]
    assert d["ci"][0] < d["mean"] < d["ci"][1] and np.isclose(d["mean"], 0.5)


def test_train_input_dct_reads_the_files_coefficients(tmp_path):
    data = _folder(tmp_path / "png", 12)
    r = runner.invoke(app, ["train", str(data), "--input", "dct", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "0.png" in r.output and "coefficients" in r.output  # PNGs have none
    jpg = tmp_path / "jpg"
    for p in data.rglob("*.png"):
        q = jpg / p.relative_to(data).with_suffix(".jpg")
        q.parent.mkdir(parents=True, exist_ok=True)
        Image.open(p).save(q, quality=90)
    out = tmp_path / "out"
    r = runner.invoke(app, ["train", str(jpg), "--input", "dct", "--seeds", "0,1", "--epochs", "6", "--batch-size",
                            "8", "--dct-width", "8", "--lr", "0.05", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert [x["config"]["input"] for x in res["runs"]] == ["dct", "dct"] and res["summary"]["dct"]["mean"] > 75
    r = runner.invoke(app, ["train", str(jpg), "--input", "dct", "--compare", "--out", str(tmp_path / "o2")])
    assert r.exit_code != 0 and "--compare" in r.output


def test_summary_pairs_the_frequency_network_with_the_pixel_one():
    runs = [{"config": {"seed": s, "jpeg_layer": False, "input": i}, "test_top1": a}
            for s, i, a in ((0, "pixels", 70.0), (0, "dct", 68.0), (1, "pixels", 72.0), (1, "dct", 71.0))]  # fmt: skip
    d = summarize_runs(runs)["dct_difference"]
    assert d["n"] == 2 and d["mean"] == -1.5 and d["ci"][0] < -1.5 < d["ci"][1]
