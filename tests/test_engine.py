"""Engines: the local pool, and Ray (a local cluster started inside the tests) with the same outputs."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys

import numpy as np
import pytest

from dnnjpeg.engine import EngineUnavailableError, LocalEngine, make_engine
from tests.evaluate.tiny import tiny_model, write_images


def _square(x, shared):
    return x * x + shared


def test_local_engine_keeps_order_and_shares_once():
    items = list(range(37))
    for workers in (1, 2):
        got = list(LocalEngine(workers).map(_square, items, 5, chunk=4))
        assert got == [x * x + 5 for x in items]
        unordered = list(LocalEngine(workers).map(_square, items, 5, chunk=4, ordered=False))
        assert sorted(unordered) == got  # every item once, whatever order the chunks finish in


def test_engine_choice_errors(monkeypatch):
    with pytest.raises(ValueError, match="--engine must be one of"):
        make_engine("spark")
    with pytest.raises(ValueError, match="an address names a Ray cluster"):
        make_engine("local", "127.0.0.1:6379")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(EngineUnavailableError, match=r"pip install 'dnnjpeg\[ray\]'"):
        make_engine("ray")


def test_unreachable_ray_address_is_one_clear_error():
    pytest.importorskip("ray")
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray cluster is already joined in this process")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(EngineUnavailableError, match=f"cannot reach a Ray cluster at 127.0.0.1:{port}"):
        make_engine("ray", f"127.0.0.1:{port}")
    with pytest.raises(EngineUnavailableError, match="expected HOST:PORT"):
        make_engine("ray", "nowhere")


@pytest.fixture(scope="module")
def ray_engine():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 << 20)
    try:
        yield make_engine("ray")
    finally:
        ray.shutdown()


def _tree(root, n=6):
    write_images(root / "a", n // 2, size=(64, 48), seed=1)
    write_images(root / "b" / "c", n - n // 2, size=(40, 56), seed=2)
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0not a jpeg")
    return root


def _files(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_ray_compress_is_byte_identical_to_the_pool(tmp_path, ray_engine):
    from dnnjpeg.compress import SETTINGS_FILE, compress_tree
    from dnnjpeg.presets import load_preset

    src = _tree(tmp_path / "src")
    before = _files(src)
    t = load_preset("efficientnet-lite0-420-original")
    pool = compress_tree(src, tmp_path / "pool", t, engine=LocalEngine(2))
    rr = compress_tree(src, tmp_path / "ray", t, engine=ray_engine)
    assert _files(tmp_path / "ray") == _files(tmp_path / "pool")
    assert (rr.written, rr.bytes_after, len(rr.failures)) == (pool.written, pool.bytes_after, 1)
    assert "broken.jpg" in rr.failures[0][0]
    assert _files(src) == before  # SRC untouched
    assert (tmp_path / "ray" / SETTINGS_FILE).is_file()
    again = compress_tree(src, tmp_path / "ray", t, engine=ray_engine, resume=True)
    assert again.skipped == pool.written and again.written == 0


class _DiesOnce:
    """A chooser whose worker process is killed (SIGKILL) the first time it meets one image:
    Ray must run the task again and the output must still be whole and the same."""

    in_process = False
    target_bpp = None

    def __init__(self, tables, marker):
        self.tables, self.marker = tables, str(marker)

    def scaled(self, factor):
        return self

    def settings(self):
        return {"dies-once": True}

    def encode(self, pixels):
        import signal

        from dnnjpeg.codec import encode

        data = encode(pixels, self.tables)
        if pixels.shape[:2] == (56, 40):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass
        return data, None


def test_ray_compress_survives_a_killed_worker(tmp_path, ray_engine):
    from dnnjpeg.compress import compress_tree
    from dnnjpeg.presets import load_preset

    src = _tree(tmp_path / "src", n=8)
    t = load_preset("efficientnet-lite0-420-original")
    ref = compress_tree(src, tmp_path / "pool", t, engine=LocalEngine(1))
    marker = tmp_path / "killed"
    rep = compress_tree(src, tmp_path / "ray", _DiesOnce(t, marker), engine=ray_engine)
    assert marker.exists()  # a worker was really killed mid-run
    assert rep.written == ref.written and len(rep.failures) == 1
    got = {k: v for k, v in _files(tmp_path / "ray").items() if not k.startswith(".")}
    want = {k: v for k, v in _files(tmp_path / "pool").items() if not k.startswith(".")}
    assert got == want  # nothing lost, nothing corrupt
    assert not [p for p in (tmp_path / "ray").rglob("*part")]


def test_ray_survey_and_evaluate_equal_the_local_ones(tmp_path, ray_engine):
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate
    from dnnjpeg.families import parse_family
    from dnnjpeg.survey import survey

    src = _tree(tmp_path / "src")
    a = survey([src], workers=2)
    b = survey([src], engine=ray_engine)
    cols = [c for c in a.columns if c not in ("luma_table", "chroma_table")]
    assert a[cols].astype(str).equals(b[cols].astype(str))
    ds = discover(src / "a")
    curves = [parse_family("standard:30,80")]
    kw = dict(at="original", n_boot=0, progress=False, chunk=2)
    r1 = evaluate(ds, tiny_model(), curves, **kw)
    r2 = evaluate(ds, tiny_model(), curves, engine=ray_engine, **kw)
    for p1, p2 in zip(r1["curves"][0]["points"], r2["curves"][0]["points"]):
        assert p1["per_image"]["bits"] == p2["per_image"]["bits"]
        assert p1["per_image"]["top1"] == p2["per_image"]["top1"]
        np.testing.assert_allclose(p1["per_image"]["kl"], p2["per_image"]["kl"], atol=1e-5)


def test_evaluate_resumes_from_cached_chunks(tmp_path):
    from dnnjpeg.data import discover
    from dnnjpeg.evaluate import evaluate
    from dnnjpeg.families import parse_family

    write_images(tmp_path / "d", 6)
    ds = discover(tmp_path / "d")
    curves = [parse_family("standard:50")]
    kw = dict(at="original", n_boot=0, progress=False, chunk=2)
    r1 = evaluate(ds, tiny_model(), curves, cache=tmp_path / "c", **kw)
    cached = sorted((tmp_path / "c").glob("chunk-*.npz"))
    assert len(cached) == 3
    m = tiny_model()

    def no_forward(*a, **k):
        raise AssertionError("the model ran although every chunk was saved")

    m.module.forward = no_forward  # a resumed run with every chunk saved never runs the network
    r2 = evaluate(ds, m, curves, cache=tmp_path / "c", **kw)
    assert r2["curves"] == r1["curves"]
    fifo = cached[0].with_name(cached[0].name + ".fifo")
    os.mkfifo(fifo)  # a FIFO in place of a saved chunk is not opened (it would hang): measured again
    cached[0].unlink()
    fifo.rename(cached[0])
    r0 = evaluate(ds, tiny_model(), curves, cache=tmp_path / "c", **kw)
    per_image = [[p["per_image"] for p in c["points"]] for c in r0["curves"]]
    assert per_image == [[p["per_image"] for p in c["points"]] for c in r1["curves"]]
    assert stat.S_ISREG(os.lstat(cached[0]).st_mode)  # the FIFO was replaced by the chunk, atomically

    # a file changed since is measured again (here: by the network, which now refuses)
    img = ds.records[0].path
    img.write_bytes(img.read_bytes())
    os.utime(img, ns=(1, 1))
    with pytest.raises(AssertionError, match="the model ran"):
        evaluate(ds, m, curves, cache=tmp_path / "c", **kw)
    shutil.rmtree(tmp_path / "c")


def test_ray_network_choice_equals_the_local_batched_one(tmp_path, ray_engine):
    """compress --select-model on Ray (each worker holds its copy of the network, one image's
    candidates per pass) writes the bytes the local batched pipeline writes."""
    from dnnjpeg.choosers import make_chooser
    from dnnjpeg.compress import compress_tree

    src = _tree(tmp_path / "src")
    ch = make_chooser(family=["standard:20,50,90"], model=tiny_model(), lam=0.05)
    local = compress_tree(src, tmp_path / "local", ch, engine=LocalEngine(2), batch_size=4)
    rr = compress_tree(src, tmp_path / "ray", ch, engine=ray_engine)
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert rr.members == local.members and sum(rr.members.values()) == local.written
    assert len(set(rr.members)) > 1  # the choice really differs between images


def test_cli_names_a_bad_engine_address_or_device(tmp_path):
    from typer.testing import CliRunner

    from dnnjpeg.cli import app

    write_images(tmp_path / "src", 2)
    runner = CliRunner()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    base = ["compress", str(tmp_path / "src"), str(tmp_path / "dst"), "--family", "standard:50", "--choose", "rate"]
    r = runner.invoke(app, ["compress", str(tmp_path / "src"), str(tmp_path / "d2"), "--engine", "spark"])
    assert r.exit_code != 0 and "--engine must be one of" in r.output
    r = runner.invoke(app, ["survey", str(tmp_path / "src"), "--out", str(tmp_path / "s"), "--engine", "local:h:1"])
    assert r.exit_code != 0 and "an address names a Ray cluster" in r.output
    r = runner.invoke(
        app, ["evaluate", "--data", str(tmp_path / "src"), "--out", str(tmp_path / "e"), "--device", "gpu"]
    )
    assert r.exit_code != 0 and "--device must be one of" in r.output
    if "ray" in sys.modules or pytest.importorskip("ray"):
        import ray

        if not ray.is_initialized():
            r = runner.invoke(app, base + ["--engine", f"ray:127.0.0.1:{port}"])
            assert r.exit_code != 0 and f"cannot reach a Ray cluster at 127.0.0.1:{port}" in r.output
    assert not (tmp_path / "dst").exists() or not any((tmp_path / "dst").rglob("*.jpg"))


def _disk_full(x, shared):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def _always_dies(x, shared):
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_ray_errors_reach_the_driver_as_they_were(ray_engine):
    import errno

    from dnnjpeg.engine import RayEngine

    with pytest.raises(OSError) as ei:  # a full disk stops the run with its own errno, not Ray's wrapper
        list(ray_engine.map(_disk_full, [1]))
    assert ei.value.errno == errno.ENOSPC
    with pytest.raises(EngineUnavailableError, match="lost a task 1 times.*--resume"):
        list(RayEngine(retries=0).map(_always_dies, [1]))
