"""A user's own classifier: TorchScript and ONNX files, --preprocess, class-index files, local weights."""

from __future__ import annotations

import json
import shutil
import sys
import types

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dnnjpeg.cli import app
from dnnjpeg.models import ModelUnavailableError, Preprocess, load_model
from dnnjpeg.models.files import model_spec, parse_preprocess, read_classes, split_spec

LITE0_PRE = "size=224,resize=256,interpolation=bilinear,mean=0.5/0.5/0.5,std=0.5/0.5/0.5"


@pytest.fixture(scope="module")
def exported(lite0, tmp_path_factory):
    """lite0 exported by the user's usual tools: torch.export, a traced TorchScript file and ONNX."""
    d = tmp_path_factory.mktemp("exported")
    x = torch.zeros(1, 3, 224, 224)
    dim = torch.export.Dim("n", min=1, max=4096)
    x2 = torch.zeros(2, 3, 224, 224)  # a batch of 1 would be specialised to 1
    torch.export.save(torch.export.export(lite0.module, (x2,), dynamic_shapes=({0: dim},)), str(d / "lite0.pt2"))
    torch.jit.trace(lite0.module, x).save(str(d / "lite0.pt"))
    torch.onnx.export(lite0.module, (x,), str(d / "lite0.onnx"), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})  # fmt: skip
    return d


def test_torchscript_and_onnx_files_give_lite0s_logits(exported, lite0):
    x = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    want = lite0.logits(x)
    ts = load_model(model_spec(str(exported / "lite0.pt"), "mean=0.5,std=0.5"))
    ep = load_model(model_spec(str(exported / "lite0.pt2"), LITE0_PRE))
    assert np.abs(ep.logits(x) - want).max() < 1e-4
    onnx = load_model(model_spec(str(exported / "lite0.onnx"), LITE0_PRE))
    assert ts.preprocess == lite0.preprocess == onnx.preprocess and ts.num_classes == 1000 == onnx.num_classes
    assert np.abs(ts.logits(x) - want).max() < 1e-4 and np.abs(onnx.logits(x) - want).max() < 1e-3
    # a file alone takes ImageNet's preprocessing, which is not lite0's
    assert load_model(str(exported / "lite0.pt")).preprocess.mean == (0.485, 0.456, 0.406)


def test_evaluate_with_the_exported_file_gives_the_built_in_top1(exported, imagenet_dir, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for f in sorted(imagenet_dir.glob("*.JPEG"))[:16]:
        shutil.copy(f, src / f.name)
    docs = []
    files = [
        (ext, ["--model", str(exported / f"lite0.{ext}"), "--preprocess", LITE0_PRE]) for ext in ("pt", "pt2", "onnx")
    ]
    for name, extra in [("built-in", []), *files]:  # an ONNX session has no state_dict: its file's bytes key the chunks
        out = tmp_path / name
        r = CliRunner().invoke(app, ["evaluate", "--data", str(src), "--codec", "standard:20,60", "--out", str(out),
                                     "--bootstrap", "0", "--device", "cpu", *extra])  # fmt: skip
        assert r.exit_code == 0, r.output
        docs.append(json.loads((out / "results.json").read_text()))
    a = docs[0]
    for b in docs[1:]:
        assert a["pristine"]["top1"] == b["pristine"]["top1"]
        assert [p["top1"] for p in a["curves"][0]["points"]] == [p["top1"] for p in b["curves"][0]["points"]]
        kl_a, kl_b = ([p["kl"] for p in d["curves"][0]["points"]] for d in (a, b))
        assert kl_b == pytest.approx(kl_a, rel=1e-2, abs=1e-4)


def test_bad_model_files_and_options_say_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not an archive")
    with pytest.raises(ModelUnavailableError, match="not a TorchScript archive"):
        load_model(str(bad))
    with pytest.raises(ModelUnavailableError, match="No such file"):
        load_model(str(tmp_path / "absent.onnx"))
    with pytest.raises(ValueError, match="key one of"):
        split_spec("m.pt;colour=yes")
    base = Preprocess(224, 256)
    with pytest.raises(ValueError, match="R/G/B"):
        parse_preprocess({"mean": "0.5/0.5"}, base)
    with pytest.raises(ValueError, match="one of"):
        parse_preprocess({"interpolation": "cubic-ish"}, base)
    with pytest.raises(ValueError, match="cannot be larger"):
        parse_preprocess({"size": "300", "resize": "256"}, base)
    assert parse_preprocess({"size": "112"}, base).resize == 128  # the usual 87.5% crop


def test_options_refine_a_built_in_model_and_travel_as_one_name(tmp_path, lite0):
    spec = model_spec("efficientnet-lite0", "size=192")
    m = load_model(spec)
    assert m.name == spec and m.preprocess.size == 192 and m.preprocess.mean == lite0.preprocess.mean
    assert split_spec(model_spec("dct:stem.pt")) == ("dct:stem.pt", {})  # a KIND: model is no file


def test_class_index_files_in_three_shapes_and_the_labels_follow(tmp_path, imagenet_dir):
    from dnnjpeg.data import discover

    (tmp_path / "a.txt").write_text("cat\ndog 2\n\nbird,x\n")
    (tmp_path / "b.json").write_text('["cat", "dog", "bird"]')
    (tmp_path / "c.json").write_text('{"1": ["dog", "Dog"], "0": ["cat", "Cat"], "2": ["bird", "Bird"]}')
    assert {read_classes(tmp_path / n) for n in ("a.txt", "b.json", "c.json")} == {("cat", "dog", "bird")}
    (tmp_path / "dup.txt").write_text("cat\ncat\n")
    with pytest.raises(ValueError, match="twice"):
        read_classes(tmp_path / "dup.txt")
    data = tmp_path / "data"
    for cls in ("bird", "cat"):
        (data / cls).mkdir(parents=True)
        shutil.copy(sorted(imagenet_dir.glob("*.JPEG"))[0], data / cls / "x.jpg")
    ds = discover(data)  # folder order: bird = 0, cat = 1
    re = ds.for_classes(read_classes(tmp_path / "a.txt"))  # the model's order: cat = 0, bird = 2
    assert [r.label for r in ds.records] == [0, 1] and [r.label for r in re.records] == [2, 0]
    with pytest.raises(ValueError, match="does not name: bird"):
        ds.for_classes(("cat", "dog"))
    with pytest.raises(ValueError, match="names 3 classes"):
        load_model(model_spec("efficientnet-lite0", classes=tmp_path / "a.txt"))


def test_timm_architecture_with_weights_from_a_local_file(tmp_path, monkeypatch):
    """timm:ARCH;weights=FILE builds the architecture without a download and loads the file strictly."""
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 5))
    net.pretrained_cfg = {"input_size": (3, 96, 96), "crop_pct": 0.75, "interpolation": "bicubic",
                          "mean": (0.1, 0.2, 0.3), "std": (0.5, 0.5, 0.5)}  # fmt: skip
    fake = types.SimpleNamespace(create_model=lambda arch, pretrained: net if not pretrained else None)
    monkeypatch.setitem(sys.modules, "timm", fake)
    w = tmp_path / "w.pth"
    trained = {k: torch.full_like(v, 0.25) for k, v in net.state_dict().items()}
    torch.save(trained, w)
    m = load_model(f"timm:tiny;weights={w}")
    assert m.preprocess == Preprocess(96, 128, "bicubic", (0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
    assert torch.equal(m.module[2].weight, torch.full((5, 3), 0.25)) and m.num_classes == 5
    torch.save({"other": torch.zeros(1)}, w)
    with pytest.raises(ModelUnavailableError, match="do not fit"):
        load_model(f"timm:tiny;weights={w}")


def test_a_committee_chooses_by_the_mean_of_its_members_kl(imagenet_dir, lite0):
    """lite0 twice is lite0: the committee's KL (what every chooser computes from its logits) is then
    exactly lite0's; a committee of different models names them all."""
    from PIL import Image

    from dnnjpeg.codec import QuantTables, decode, encode
    from dnnjpeg.evaluate.trial import outcome

    im = np.asarray(Image.open(sorted(imagenet_dir.glob("*.JPEG"))[0]).convert("RGB"))
    x = np.stack(
        [lite0.preprocess.geometry(im), lite0.preprocess.geometry(decode(encode(im, QuantTables.standard(15))))]
    )
    twice = load_model("efficientnet-lite0+efficientnet-lite0")
    kl_one = outcome(lite0.logits(x[:1]), lite0.logits(x[1:]))[1]
    kl_two = outcome(twice.logits(x[:1]), twice.logits(x[1:]))[1]
    assert kl_two == pytest.approx(kl_one, rel=1e-4) and twice.num_classes == 2000
    assert load_model("efficientnet-lite0+efficientnet-lite1").preprocess.size == 240  # the larger input
    with pytest.raises(ValueError, match="two models or more"):
        load_model("efficientnet-lite0+")
