"""A hostile image tree: every kind of bad input a user's folder can hold, beside good images.

``build_hostile_tree(root)`` makes ``root/src`` and says, for every entry, which commands
must name it as bad and which must process it. The reliability tests run every command
over it (tests/test_hostile.py); the README's reliability table lists the same kinds.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.codec.makers import noise_image

#: setpriv drops the capabilities that let root read a chmod-000 folder, so the unreadable
#: folder is really unreadable to the command under test even when the tests run as root.
SETPRIV = shutil.which("setpriv")


def _jpeg(img, **kw) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + ((data[sos + 2] << 8) | data[sos + 3])


def _sof(data: bytes) -> int:
    for m in (b"\xff\xc0", b"\xff\xc2"):
        i = data.find(m)
        if i >= 0:
            return i
    raise AssertionError("no SOF")


@dataclass
class HostileTree:
    """Paths under ``src`` by kind.

    Attributes:
        good: images that every decoding command must process (compress, evaluate, design).
        header_bad: entries whose header cannot be read: info and survey name them, and every
            decoding command does too.
        decode_bad: files with a readable header but no usable image: decoding commands name them.
        not_jpeg_images: readable images that are not JPEG: info/survey name them, decoders use them.
        folders: entries that are folders nobody may enter (reported by every command).
        unreadable_enforced: whether the locked folder is really unreadable to the commands run.
    """

    root: Path
    src: Path
    good: dict[str, Path] = field(default_factory=dict)
    header_bad: dict[str, Path] = field(default_factory=dict)
    decode_bad: dict[str, Path] = field(default_factory=dict)
    not_jpeg_images: dict[str, Path] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    unreadable_enforced: bool = False

    def decode_failures(self) -> dict[str, Path]:
        """What a decoding command (compress, evaluate, design) must name as bad."""
        return {**self.header_bad, **self.decode_bad, **self.folders}

    def decodable(self) -> dict[str, Path]:
        """What a decoding command must process."""
        return {**self.good, **self.not_jpeg_images}


def build_hostile_tree(root: Path) -> HostileTree:
    """Make ``root/src`` with good images and every kind of bad entry (see the module doc)."""
    src = root / "src"
    src.mkdir(parents=True)
    t = HostileTree(root, src)
    img = noise_image(96, 128, seed=1)

    def put(kind: str, name: str | bytes, data: bytes, where: dict) -> Path:
        if isinstance(name, bytes):
            p = Path(os.fsdecode(os.path.join(os.fsencode(src), name)))
        else:
            p = src / name
        p.write_bytes(data)
        where[kind] = p
        return p

    base = _jpeg(img, quality=80)
    for i in range(4):
        put(f"plain{i}", f"plain{i}.jpg", _jpeg(noise_image(96, 128, seed=10 + i), quality=70 + 5 * i), t.good)
    put("progressive", "progressive.jpg", _jpeg(img, quality=75, progressive=True), t.good)
    put("cmyk", "cmyk.jpg", _jpeg(Image.fromarray(img).convert("CMYK")), t.good)
    put("gray", "gray.jpg", _jpeg(img[..., 0]), t.good)
    put("tiny_1x1", "tiny-1x1.jpg", _jpeg(img[:1, :1]), t.good)
    put("strip_1x20000", "strip-1x20000.jpg", _jpeg(noise_image(1, 20000, seed=3)), t.good)
    put("unicode_name", "日本語 ✓ café.jpg", _jpeg(noise_image(64, 80, seed=4)), t.good)
    put("non_utf8_name", b"latin1-\xe9t\xe9-\xff.jpg", _jpeg(noise_image(64, 80, seed=5)), t.good)
    png = io.BytesIO()
    Image.fromarray(img).save(png, "PNG")
    put("png", "photo.png", png.getvalue(), t.not_jpeg_images)
    put("png_as_jpeg", "png-named.jpg", png.getvalue(), t.not_jpeg_images)

    put("zero_bytes", "empty.jpg", b"", t.header_bad)
    put(
        "random_bytes",
        "random.jpg",
        np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        t.header_bad,
    )
    put("header_cut", "header-cut.jpg", base[:100], t.header_bad)

    put("truncated", "truncated.jpg", base[: len(base) // 2], t.decode_bad)
    start = _scan_start(base)
    zeroed = bytearray(base)
    zeroed[start + 200 : start + (len(base) - start) // 2] = bytes((len(base) - start) // 2 - 200)
    put("corrupt_scan", "corrupt-scan.jpg", bytes(zeroed), t.decode_bad)
    sof9 = bytearray(base)
    sof9[_sof(base) + 1] = 0xC9  # says arithmetic coding; the data is Huffman-coded
    put("sof9", "sof9.jpg", bytes(sof9), t.decode_bad)
    bomb = bytearray(_jpeg(img[:16, :16]))
    i = _sof(bytes(bomb))
    bomb[i + 5 : i + 9] = b"\xff\xff\xff\xff"  # 65535 × 65535 declared, a few bytes of data
    put("bomb_header", "bomb.jpg", bytes(bomb), t.decode_bad)
    twelve = bytearray(base)
    twelve[_sof(base) + 4] = 12
    put("twelve_bit", "twelve-bit.jpg", bytes(twelve), t.decode_bad)

    loop = src / "loop.jpg"
    loop.symlink_to("loop.jpg")
    t.header_bad["symlink_loop"] = loop
    dangling = src / "dangling.jpg"
    dangling.symlink_to("nowhere.jpg")
    t.header_bad["dangling_link"] = dangling
    fifo = src / "pipe.jpg"
    os.mkfifo(fifo)
    t.header_bad["fifo"] = fifo
    up = src / "up"
    up.symlink_to("..")
    t.folders["parent_link"] = up
    locked = src / "locked"
    locked.mkdir()
    (locked / "inside.jpg").write_bytes(base)
    locked.chmod(0)
    t.folders["unreadable_folder"] = locked
    t.unreadable_enforced = os.geteuid() != 0 or SETPRIV is not None
    if not t.unreadable_enforced:  # root without setpriv reads it anyway: then it holds a good image
        del t.folders["unreadable_folder"]
        t.good["inside_locked"] = locked / "inside.jpg"
    return t


def unlock(t: HostileTree) -> None:
    """Make the locked folder removable again (pytest's tmp cleanup)."""
    locked = t.src / "locked"
    if locked.exists():
        locked.chmod(stat.S_IRWXU)


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): path → content hash, link target or kind."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        if any(d == s or s in d.parents for s in skip):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = d / name
            if any(p == s for s in skip):
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[str(p)] = "link:" + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() + f":{stat.S_IMODE(st.st_mode):o}"
            else:
                out[str(p)] = f"mode:{st.st_mode:o}"
    return out


def run_cli(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``dnnjpeg ARGS`` in a fresh process (with DAC capabilities dropped when root), under a
    timeout: a hang fails the test instead of stalling the suite."""
    cmd = [sys.executable, "-c", "from dnnjpeg.cli import main; main()", *args]
    if os.geteuid() == 0 and SETPRIV is not None:
        cmd = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
