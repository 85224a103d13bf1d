"""The network choice's classifier made fast: onnxruntime where it can, exact up to float rounding."""

import numpy as np
import pytest
import torch

from dnnjpeg.models import Model, Preprocess


def _net() -> Model:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(4, 5))  # fmt: skip
    return Model("tiny", module.eval(), Preprocess(16, 16), 5, "custom")


def test_the_onnx_export_gives_the_networks_logits_at_any_batch_size():
    from dnnjpeg.models.fast import onnx_model
    from dnnjpeg.models.files import OnnxModule

    m = _net()
    fast = onnx_model(m)
    assert isinstance(fast.module, OnnxModule) and fast.info["onnx"]
    for n in (1, 3, 7):
        x = np.random.default_rng(n).integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
        assert np.abs(fast.logits(x) - m.logits(x)).max() < 1e-5
    import pickle  # worker processes get the export itself, not a path to it

    again = pickle.loads(pickle.dumps(fast.module))
    x = np.random.default_rng(9).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert np.array_equal(fast.logits(x), Model("t", again, m.preprocess, 5, "custom").logits(x))


def test_a_committee_is_exported_member_by_member(lite0):
    from dnnjpeg.models import load_model
    from dnnjpeg.models.committee import CommitteeModule
    from dnnjpeg.models.fast import onnx_model
    from dnnjpeg.models.files import OnnxModule

    c = load_model("efficientnet-lite0+efficientnet-lite0")
    fast = onnx_model(c)
    assert isinstance(fast.module, CommitteeModule)
    assert all(isinstance(m.module, OnnxModule) for m in fast.module.members)
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    assert np.abs(fast.logits(x) - c.logits(x)).max() < 1e-3


def test_an_export_that_changes_the_answers_is_refused_with_a_warning(monkeypatch):
    import dnnjpeg.models.fast as fast

    monkeypatch.setattr(fast, "TOLERANCE", -1.0)  # any difference, even 0, counts as wrong
    with pytest.warns(RuntimeWarning, match="not run by onnxruntime.*differ"):
        assert fast.onnx_model(_net()) is None


def test_what_each_setting_makes(monkeypatch):
    import dnnjpeg.models.fast as fast
    from dnnjpeg.models.files import OnnxModule

    m = _net()
    compiled = []
    monkeypatch.setattr(Model, "compiled", lambda self, b: compiled.append(b) or self)
    assert fast.fast_model(m, 8, images=10) is m  # too few images to pay back even the 1 s export
    assert isinstance(fast.fast_model(m, 8, images=fast.ONNX_FROM).module, OnnxModule)
    assert isinstance(fast.fast_model(m, 8, images=1, how="onnx").module, OnnxModule)
    assert fast.fast_model(m, 8, images=10**6, how="none") is m and not compiled
    # gradients needed: never onnxruntime; compiled from COMPILE_FROM images
    assert fast.fast_model(m, 8, images=fast.ONNX_FROM, gradients=True) is m and not compiled
    fast.fast_model(m, 8, images=fast.COMPILE_FROM, gradients=True)
    fast.fast_model(m, 4, images=1, how="compile")
    assert compiled == [8, 4]
    with pytest.raises(ValueError, match="no gradients"):
        fast.fast_model(m, 8, images=1, gradients=True, how="onnx")
    with pytest.raises(ValueError, match="accelerate must be one of"):
        fast.fast_model(m, 8, images=1, how="fast")
