"""The batched classifier pipeline: packing, order, exactness against the per-image path, devices."""

from __future__ import annotations

import shutil
import tracemalloc

import numpy as np
import pytest

from dnnjpeg.pipeline import candidates, measure_images, resolve_device, score_stream
from tests.evaluate.tiny import tiny_model, write_images


class _Recorder:
    """A model whose logits are each row's channel means (exact in any batch) and which records
    the size of every batch it is given."""

    num_classes = 3

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def logits(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        self.sizes.append(len(x))
        return x.reshape(len(x), -1, 3).mean(1).astype(np.float32)


def _rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4, 3), dtype=np.uint8)


def test_score_stream_packs_full_batches_and_keeps_order():
    m = _Recorder()
    counts = [9, 0, 3, 17, 1, 9]
    items = [(i, _rows(n, i) if n else None, f"p{i}") for i, n in enumerate(counts)]
    got = list(score_stream(iter(items), m, batch_size=8))
    sizes = list(m.sizes)
    assert [k for k, _, _ in got] == list(range(len(counts)))
    assert [p for _, _, p in got] == [f"p{i}" for i in range(len(counts))]
    for (_, x, _), (_, logits, _) in zip(items, got):
        if x is None:
            assert logits is None
        else:  # each item's rows, whatever batches they were split across
            np.testing.assert_array_equal(logits, m.logits(x))
    assert sum(sizes) == sum(counts)
    assert all(s == 8 for s in sizes[:-1]) and 0 < sizes[-1] <= 8


def test_score_stream_yields_an_item_as_soon_as_its_rows_are_scored():
    m = _Recorder()
    seen = []

    def items():
        for i in range(6):
            seen.append(i)
            yield i, _rows(4, i), None

    for k, _, _ in score_stream(items(), m, batch_size=4):
        # one item fills one batch: it comes back before the next item is even read
        assert seen[-1] == k


def test_score_stream_rejects_a_bad_batch_size():
    with pytest.raises(ValueError, match="batch size"):
        list(score_stream(iter([]), _Recorder(), batch_size=0))


def _some(imagenet_dir, n):
    from dnnjpeg.codec import load_image

    return [load_image(str(p)) for p in sorted(imagenet_dir.glob("*.JPEG"))[:n]]


def test_batched_choice_equals_the_per_image_choice(tmp_path, imagenet_dir, lite0):
    """compress --select-model through the pipeline (candidates of several images per pass)
    writes the same bytes and chooses the same members as select_encode image by image."""
    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.engine import LocalEngine
    from dnnjpeg.select import select_encode

    src = tmp_path / "src"
    src.mkdir()
    files = sorted(imagenet_dir.glob("*.JPEG"))[:5]
    for f in files:
        shutil.copy(f, src / f.name)
    ch = make_chooser(family=["standard:20,50,80"], model=lite0, lam=0.004)
    # the encoder's own bytes (no metadata copied, no source kept): what select_encode returns
    rep = compress_tree(
        src, tmp_path / "out", ch, engine=LocalEngine(2), batch_size=5, strip_metadata=True, allow_larger=True
    )
    assert rep.ok and rep.written == 5
    members = []
    for img, f in zip(_some(imagenet_dir, 5), files):
        sel = select_encode(img, ch.family.points, lite0, 0.004)
        assert (tmp_path / "out" / f.name).read_bytes() == sel.data, f.name
        members.append(sel.index)
    assert rep.members == {k: members.count(k) for k in set(members)}


def test_measure_images_equals_select_encode(imagenet_dir, lite0):
    from dnnjpeg.families import parse_family
    from dnnjpeg.select import select_encode

    fam = parse_family("standard:30,70")
    imgs = _some(imagenet_dir, 3)
    for img, (c, kl) in zip(imgs, measure_images(imgs, fam.points, lite0, batch_size=4)):
        sel = select_encode(img, fam.points, lite0, 0.0)
        np.testing.assert_array_equal(c.bits, sel.bits)
        np.testing.assert_allclose(kl, sel.kl, rtol=1e-4, atol=1e-6)
        assert c.inputs is None  # dropped once scored: the stream holds no pixels


def test_candidates_rows(imagenet_dir, lite0):
    from dnnjpeg.codec import decode
    from dnnjpeg.families import parse_family

    img = _some(imagenet_dir, 1)[0]
    fam = parse_family("standard:40,90")
    c = candidates(img, fam.points, lite0.preprocess)
    assert c.inputs.shape == (3, 224, 224, 3) and c.pixels == img.shape[0] * img.shape[1]
    np.testing.assert_array_equal(c.inputs[0], lite0.preprocess.geometry(img))
    np.testing.assert_array_equal(c.inputs[2], lite0.preprocess.geometry(decode(c.datas[1])))
    assert c.bits[0] < c.bits[1]


def test_resolve_device():
    import torch

    assert resolve_device("cpu").type == "cpu"
    mps = getattr(torch.backends, "mps", None)
    want = "cuda" if torch.cuda.is_available() else "mps" if mps and mps.is_available() else "cpu"
    assert resolve_device("auto").type == want
    with pytest.raises(ValueError, match="--device must be one of"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_model_on_a_device_gives_the_same_logits():
    m = tiny_model()
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    m2 = m.to("cpu")
    assert m2 is m and m2.device == "cpu"
    np.testing.assert_array_equal(m2.logits(x), m.logits(x))


def _peak_evaluate(folder, n, chunk):
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate
    from dnnjpeg.families import parse_family

    ds = discover(folder).subset("all", n)
    tracemalloc.start()
    try:
        r = evaluate(ds, tiny_model(), [parse_family("standard:50")], at="original", n_boot=0, progress=False,
                     chunk=chunk)  # fmt: skip
        return tracemalloc.get_traced_memory()[1], r
    finally:
        tracemalloc.stop()


def test_evaluate_memory_is_flat_in_the_number_of_images(tmp_path):
    """--at original: the peak of Python-traced memory (NumPy arrays included) with 8× the images
    stays within a small margin of the peak with 1×: only one chunk of sources is ever held."""
    write_images(tmp_path / "d", 96, size=(400, 300))  # 0.36 MB per decoded image
    small, r1 = _peak_evaluate(tmp_path / "d", 12, chunk=12)
    large, r8 = _peak_evaluate(tmp_path / "d", 96, chunk=12)
    assert r8["settings"]["n_images"] == 96 and r1["settings"]["n_images"] == 12
    # holding every source would add 84 × 0.36 MB = 30 MB; per-image results are a few hundred bytes
    assert large < small + 3_000_000, (small, large)
    assert large < 12_000_000
    # the first 12 images' results do not depend on how many follow
    assert r8["curves"][0]["points"][0]["per_image"]["bits"][:12] == r1["curves"][0]["points"][0]["per_image"]["bits"]
