"""JPEG coefficients as network input: frequency-as-channel planes, block-grid crops, DCT-domain flips.

A file's dequantized coefficients become planes: Y as (64, H/8, W/8), one channel per frequency
u·8 + v (natural order: u vertical, v horizontal), and Cb, Cr as (128, H/16, W/16) for 4:2:0 (Cb's 64
then Cr's 64), at luma resolution for 4:4:4. No inverse DCT runs.

Rules for other files (one per kind, stated where they apply):
- gray: chroma planes of zeros (exact: a gray image's chroma is neutral, every coefficient 0);
- progressive or multi-scan: read by jpeglib instead of the compiled reader (same values, slower);
- any other chroma layout (4:2:2, 4:4:0, 4:1:1, 4:1:0, 4:4:4 where 4:2:0 is asked, Cb and Cr sampled
  differently), each chroma plane at ½, 1 or 2× the asked layout's resolution per axis: brought to the
  asked layout in the DCT domain, per axis (:func:`resample_chroma`): halved by libjpeg's reduced
  inverse DCT then regrouped (as :func:`downscale`), doubled by repeating each decoded sample (libjpeg's
  plain up-sampling); other ratios, and files coded in RGB or CMYK: an error naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from dnnjpeg.codec.coefficients import Coefficients
from dnnjpeg.codec.errors import UnsupportedJpegError
from dnnjpeg.codec.tables import QuantTables

__all__ = ["DctPlanes", "planes_of", "planes_from_bytes", "load_planes", "hflip", "crop_blocks", "downscale",
           "reduced_idct", "LAYOUTS", "ODD_H"]  # fmt: skip

LAYOUTS = ("4:2:0", "4:4:4")
#: channels whose horizontal frequency v is odd: a horizontal flip negates them
ODD_H = np.array([(k % 8) % 2 == 1 for k in range(64)])


@dataclass(frozen=True)
class DctPlanes:
    """One image's dequantized coefficients as channels.

    Attributes:
        y: float32 (64, bh, bw) luma, channel u·8 + v.
        cbcr: float32 (128, ch, cw): Cb's 64 channels then Cr's; (ch, cw) = (bh, bw) / 2
            rounded up for 4:2:0, (bh, bw) for 4:4:4.
        layout: "4:2:0" or "4:4:4"; ``tables``: the file's; ``width``, ``height``: pixels.
    """

    y: np.ndarray
    cbcr: np.ndarray
    layout: str
    tables: QuantTables
    width: int
    height: int


def _channels(blocks: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """int16 (rows, cols, 8, 8) levels → float32 (64, rows, cols) dequantized."""
    r, c = blocks.shape[:2]
    # transpose the int16 levels (half the bytes of floats), then one multiply into float32
    lv = np.ascontiguousarray(blocks.reshape(r * c, 64).T)
    return np.multiply(lv, steps.reshape(64, 1).astype(np.float32), dtype=np.float32).reshape(64, r, c)


def _layout(layout: str, sub: str) -> str:
    """The layout asked for; "file": the file's own (gray → 4:2:0; others then fail the layout check)."""
    if layout == "file":
        return sub if sub in LAYOUTS else "4:2:0"
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} or 'file', got {layout!r}")
    return layout


def _axis_ops(sampling: tuple[tuple[int, int], ...], layout: str, where: str) -> list[tuple[int, int]]:
    """Per chroma component, per axis (vertical, horizontal), how its planes must be scaled to reach
    ``layout``: 2 (double), 1 or -2 (halve); an error naming the file for other ratios."""
    (hy, vy) = sampling[0]
    t = 2 if layout == "4:2:0" else 1  # luma samples per chroma sample in the asked layout, per axis
    out = []
    for hc, vc in sampling[1:]:
        ops = []
        for luma, c in ((vy, vc), (hy, hc)):
            r = luma / (t * c)  # how much finer this chroma must become
            if r not in (0.5, 1, 2):
                raise UnsupportedJpegError(
                    where, f"chroma sampling {sampling}: only ½, 1 or 2× the {layout} grid is read"
                )
            ops.append({0.5: -2, 1: 1, 2: 2}[r])
        out.append((ops[0], ops[1]))
    return out


def _up2() -> np.ndarray:
    """(2, 8, 8) U: the coefficients of the two blocks that one block becomes when its 8 decoded
    samples along an axis are each repeated twice (libjpeg's plain up-sampling): out_i = U_i c."""
    d = _dct(8)
    rep = np.repeat(np.eye(8), 2, axis=0)  # (16, 8): each sample twice
    px = rep @ d.T  # the 16 samples from the 8 coefficients
    return np.stack([d @ px[:8], d @ px[8:]])


def resample_chroma(cbcr: np.ndarray, ops: tuple[int, int], rows: int, cols: int) -> np.ndarray:
    """Scale chroma planes per axis without leaving the DCT domain, then fit them to ``rows``×``cols``
    blocks (cut, or padded with zero blocks: mid-gray).

    Args:
        cbcr: float (K·64, h, w), channel u·8 + v per component.
        ops: (vertical, horizontal), each 2 (double: :func:`_up2`), 1 (keep) or -2 (halve: libjpeg's
            reduced inverse DCT then regrouped, as :func:`downscale`).
    Returns:
        float32 (K·64, rows, cols).
    """
    kc, h, w = cbcr.shape
    a = cbcr.reshape(kc // 64, 8, 8, h, w).astype(np.float32)
    down = _regroup(2).astype(np.float32).reshape(8, 2, 8)  # [u', i, u]
    up = _up2().astype(np.float32)  # [j, u', u]
    for axis, op in enumerate(ops):  # axis 0: u and the block rows; 1: v and the block columns
        if op == 1:
            continue
        if axis == 1:
            a = a.transpose(0, 2, 1, 4, 3)  # (k, v, u, w, h): the same code for both axes
        k, _, o, n, m = a.shape
        if op == -2:
            pad = np.zeros((k, 8, o, n + n % 2, m), np.float32)
            pad[:, :, :, :n] = a
            g = pad.reshape(k, 8, o, (n + 1) // 2, 2, m)
            a = np.einsum("aiu,kuoyim->kaoym", down, g, optimize=True)
        else:
            a = np.einsum("jau,kuonm->kaonjm", up, a, optimize=True).reshape(k, 8, o, 2 * n, m)
        if axis == 1:
            a = a.transpose(0, 2, 1, 4, 3)
    out = np.zeros((kc // 64, 8, 8, rows, cols), np.float32)
    r, c = min(rows, a.shape[3]), min(cols, a.shape[4])
    out[..., :r, :c] = a[..., :r, :c]
    return out.reshape(kc, rows, cols)


def planes_of(coef: Coefficients, layout: str = "4:2:0", where: str = "<coefficients>") -> DctPlanes:
    """The planes of read coefficients, by the module's rules (``where`` names the file in errors)."""
    layout = _layout(layout, coef.subsampling)
    y = _channels(coef.blocks[0], coef.tables.luma)
    bh, bw = y.shape[1:]
    ch, cw = ((bh + 1) // 2, (bw + 1) // 2) if layout == "4:2:0" else (bh, bw)
    if len(coef.blocks) == 1:
        cbcr = np.zeros((128, ch, cw), np.float32)
    else:
        if len(coef.blocks) != 3:
            raise UnsupportedJpegError(where, f"{len(coef.blocks)} components: the DCT loader reads gray and YCbCr")
        ops = _axis_ops(coef.sampling, layout, where)
        parts = [_channels(b, coef.tables.chroma) for b in coef.blocks[1:]]
        if ops != [(1, 1), (1, 1)] or any(x.shape[1:] != (ch, cw) for x in parts):
            parts = [resample_chroma(x, op, ch, cw) for x, op in zip(parts, ops)]
        cbcr = np.concatenate(parts)
    return DctPlanes(y, cbcr, layout, coef.tables, coef.width, coef.height)


_GATHER: list = []


def _gather_kernel():
    """dest[ch0 + k, r, c] = flat[off + r·gcols + c, k] · steps[k]: dequantize and lay out in one
    compiled pass. NumPy needs a strided int16 transpose, a float multiply and, per component, copies
    of the cropped grid: 1.2–1.6 ms of a 3 ms read at ImageNet size; this loop is a fraction of that."""
    if _GATHER:
        return _GATHER[0]
    import numba

    @numba.njit(cache=True, nogil=True)
    def gather(flat, off, gcols, steps, dest, ch0):  # pragma: no cover - compiled
        # one block row at a time (≤ 16 kB of levels, in L1), written one channel at a time: each
        # write is a contiguous run; the other order touches 64 pages per block and was 3× slower
        rows, cols = dest.shape[1], dest.shape[2]
        for r in range(rows):
            b = off + r * gcols
            for k in range(64):
                s = steps[k]
                for c in range(cols):
                    dest[ch0 + k, r, c] = flat[b + c, k] * s

    _GATHER.append(gather)
    return gather


def planes_from_bytes(data: bytes, path: str = "<bytes>", layout: str = "4:2:0", verify: bool = True) -> DctPlanes:
    """A JPEG file's planes from its bytes: the compiled reader's flat blocks dequantized straight
    into the channel layout (no :class:`Coefficients` in between); progressive and multi-scan files
    through jpeglib and :func:`planes_of`. Equal to ``planes_of(read_coefficients(path), layout)``.
    ``layout`` "file" takes the file's own (4:2:0 or 4:4:4; gray as 4:2:0). ``verify``: see
    :func:`dnnjpeg.dct.read.decode_flat` (False only for bytes dnnjpeg encoded itself).

    Raises:
        NotAJpegError / CorruptJpegError / UnsupportedJpegError naming ``path``.
    """
    from dnnjpeg.dct.read import decode_flat

    if layout not in (*LAYOUTS, "file"):
        raise ValueError(f"layout must be one of {LAYOUTS} or 'file', got {layout!r}")
    flat = decode_flat(data, path, verify)
    if flat is None:
        from dnnjpeg.codec.header import parse_header_bytes

        _refuse_color(parse_header_bytes(data, path).color, path)
        return planes_of(_jpeglib_coefficients(data, path), layout, path)
    plan, blocks = flat
    _refuse_color(plan.color, path)
    tables, sampling, width, height = plan.coef
    sub = _subsampling(sampling)
    layout = _layout(layout, sub)
    gather = _gather_kernel()
    bh, bw = plan.real[0]
    y = np.empty((64, bh, bw), np.float32)
    gather(blocks, int(plan.off[0]), plan.grids[0][1], tables.luma.reshape(64).astype(np.float32), y, 0)
    ch, cw = ((bh + 1) // 2, (bw + 1) // 2) if layout == "4:2:0" else (bh, bw)
    if len(sampling) == 1:
        return DctPlanes(y, np.zeros((128, ch, cw), np.float32), layout, tables, width, height)
    if len(sampling) != 3:
        raise UnsupportedJpegError(path, f"{len(sampling)} components: the DCT loader reads gray and YCbCr")
    ops = _axis_ops(sampling, layout, path)
    if ops != [(1, 1), (1, 1)] or any(plan.real[i] != (ch, cw) for i in (1, 2)):
        # 4:2:2, 4:4:0, 4:1:1, or 4:4:4 where 4:2:0 is asked: chroma resampled to the asked layout
        steps = tables.chroma.reshape(64).astype(np.float32)
        parts = []
        for i, op in zip((1, 2), ops):
            own = np.empty((64, *plan.real[i]), np.float32)
            gather(blocks, int(plan.off[i]), plan.grids[i][1], steps, own, 0)
            parts.append(resample_chroma(own, op, ch, cw))
        return DctPlanes(y, np.concatenate(parts), layout, tables, width, height)
    cbcr = np.empty((128, ch, cw), np.float32)
    steps = tables.chroma.reshape(64).astype(np.float32)
    for i in (1, 2):
        gather(blocks, int(plan.off[i]), plan.grids[i][1], steps, cbcr, 64 * (i - 1))
    return DctPlanes(y, cbcr, layout, tables, width, height)


def _refuse_color(color: str, path: str) -> None:
    """Planes are luma and chroma: a file coded in RGB (or CMYK) has neither; an error naming it."""
    if color not in ("YCbCr", "gray"):
        raise UnsupportedJpegError(path, f"{color}-coded JPEG: the DCT loader reads gray and YCbCr files")


def _jpeglib_coefficients(data: bytes, path: str) -> Coefficients:
    """Progressive and multi-scan files: jpeglib reads paths only, so the bytes go through a private
    temporary file; errors name ``path``."""
    import tempfile

    from dnnjpeg.codec import read_coefficients
    from dnnjpeg.codec.errors import JpegError

    with tempfile.TemporaryDirectory(prefix="dnnjpeg-") as d:
        tmp = os.path.join(d, "scan.jpg")
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            return read_coefficients(tmp)
        except JpegError as e:
            raise type(e)(path, e.cause) from e


def _subsampling(sampling: tuple[tuple[int, int], ...]) -> str:
    from dnnjpeg.codec.header import Component, subsampling_name

    return subsampling_name(tuple(Component(i, h, v, 0) for i, (h, v) in enumerate(sampling)))


def load_planes(path: str | os.PathLike[str], layout: str = "4:2:0") -> DctPlanes:
    """A JPEG file's planes (:func:`planes_from_bytes` of its bytes; only regular files are opened).

    Raises:
        NotAJpegError / CorruptJpegError / UnsupportedJpegError naming the file.
    """
    from dnnjpeg._fs import read_regular

    p = os.fspath(path)
    return planes_from_bytes(read_regular(p), p, layout)


def hflip(y: np.ndarray, cbcr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A horizontal flip without leaving the DCT domain: block columns reversed, odd horizontal
    frequencies negated (the basis cos((2x + 1)vπ/16) is (−1)^v times itself under x → 7 − x).

    Args:
        y: (..., 64, rows, cols); cbcr: (..., 128, rows', cols') (numpy arrays or torch tensors).
    Returns:
        The flipped planes. Exactly the coefficients of the flipped image when the width is a
        multiple of the MCU width (8 px for 4:4:4, 16 for 4:2:0); otherwise the padding moves to
        the left edge.
    """

    def flip(a, odd):
        sign = np.where(odd, -1.0, 1.0).astype(np.float32)
        if hasattr(a, "flip"):  # a torch tensor
            import torch

            s = torch.from_numpy(sign).to(a.dtype).view(-1, 1, 1)
            return a.flip(-1) * s
        return a[..., ::-1] * sign.reshape(-1, 1, 1)

    return flip(y, ODD_H), flip(cbcr, np.concatenate([ODD_H, ODD_H]))


def crop_blocks(p: DctPlanes, top: int, left: int, rows: int, cols: int) -> DctPlanes:
    """A crop on the block grid (luma blocks; 4:2:0 needs even ``top`` and ``left`` and, unless it
    ends at the image's edge, even ``rows`` and ``cols``). Blocks past the edge are zeros (mid-gray)."""
    f = 2 if p.layout == "4:2:0" else 1
    if top % f or left % f or top < 0 or left < 0 or rows < 1 or cols < 1:
        raise ValueError(f"a {p.layout} crop starts on the MCU grid ({f} blocks) at ≥ 0, got ({top}, {left})")

    def cut(a, t, lft, r, c):
        out = np.zeros((a.shape[0], r, c), np.float32)
        part = a[:, t : t + r, lft : lft + c]
        out[:, : part.shape[1], : part.shape[2]] = part
        return out

    y = cut(p.y, top, left, rows, cols)
    c = cut(p.cbcr, top // f, left // f, -(-rows // f), -(-cols // f))
    return DctPlanes(y, c, p.layout, p.tables, min(8 * cols, p.width), min(8 * rows, p.height))


def _dct(n: int) -> np.ndarray:
    """(n, n) orthonormal DCT-II (JPEG's DCT of an 8×8 block X is D X Dᵀ with n = 8)."""
    k = np.arange(n)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / (2 * n)) * np.sqrt(2 / n)
    d[0] /= np.sqrt(2)
    return d


def reduced_idct(factor: int) -> np.ndarray:
    """(8/f, 8) R: libjpeg's reduced-size inverse DCT along one axis (``scale_denom`` f = 2 or 4, the
    decode Pillow's ``draft`` asks for): a block's 8/f pixels per row are R c for its 8 coefficients
    c, before the level shift. Separable: the block's pixels are R C Rᵀ + 128.

    Written out here because no library exposes it as a matrix: libjpeg's 4×4 and 2×2 kernels
    (jidctred.c, kept by libjpeg-turbo) are not the 4- or 2-point inverse DCT of the lowest
    coefficients; they also read the odd coefficients 5 and 7 (and 3 for 2×2). These are their
    constants, scaled so that a flat block keeps its mean; with them the DCT-domain result equals
    Pillow's draft() decode within one level of rounding (tested)."""
    s8 = np.sqrt(8)
    if factor == 2:
        dc = np.array([2, 0, 0, 0, 0, 0, 0, 0], float)
        even = np.array([0, 0, 1.847759065, 0, 0, 0, -0.765366865, 0])
        odd0 = np.array([0, 1.061594337, 0, -2.172734803, 0, 1.451774981, 0, -0.211164243])
        odd2 = np.array([0, 2.562915447, 0, 0.899976223, 0, -0.601344887, 0, -0.509795579])
        return np.stack([dc + even + odd2, dc - even + odd0, dc - even - odd0, dc + even - odd2]) / (2 * s8)
    if factor == 4:
        dc = np.array([4, 0, 0, 0, 0, 0, 0, 0], float)
        odd = np.array([0, 3.624509785, 0, -1.272758580, 0, 0.850430095, 0, -0.720959822])
        return np.stack([dc + odd, dc - odd]) / (4 * s8)
    raise ValueError(f"factor must be 2 or 4, got {factor}")


def _regroup(factor: int) -> np.ndarray:
    """(8, 8·f) A: the 8-point DCT of ``factor`` neighbouring blocks decoded by libjpeg's reduced
    inverse DCT (:func:`reduced_idct`), from their coefficients (block i's u-th at column i·8 + u)."""
    return _dct(8) @ np.kron(np.eye(factor), reduced_idct(factor))


def downscale(planes: np.ndarray, factor: int) -> np.ndarray:
    """Down-scale coefficient planes by ½ or ¼ without leaving the DCT domain.

    Each block becomes the (8/f)×(8/f) pixels libjpeg's scaled inverse DCT gives it (``scale_denom``
    f, Pillow's ``draft``: mostly its lowest (8/f)² coefficients, see :func:`reduced_idct`), and each
    f×f group of reduced blocks is regrouped into one 8×8 block — one exact linear map per axis
    (:func:`_regroup`). A grid not divisible by f is padded with zero blocks (mid-gray).

    Args:
        planes: float (K·64, h, w), channel u·8 + v per component (K = 1 for luma, 2 for Cb+Cr).
        factor: 2 or 4.
    Returns:
        float32 (K·64, ⌈h/f⌉, ⌈w/f⌉).
    """
    if factor not in (2, 4):
        raise ValueError(f"factor must be 2 or 4, got {factor}")
    kc, h, w = planes.shape
    hh, ww = -(-h // factor), -(-w // factor)
    a = np.zeros((kc // 64, 8, 8, hh * factor, ww * factor), np.float32)
    a[..., :h, :w] = planes.reshape(kc // 64, 8, 8, h, w)
    blocks = a.reshape(kc // 64, 8, 8, hh, factor, ww, factor)  # (k, u, v, gy, i, gx, j)
    m = _regroup(factor).astype(np.float32).reshape(8, factor, 8)  # A[u', i·8 + u] → [u', i, u]
    out = np.einsum("aiu,bjv,kuvyixj->kabyx", m, m, blocks, optimize=True)
    return np.ascontiguousarray(out.reshape(kc, hh, ww), dtype=np.float32)
