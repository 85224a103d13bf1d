"""The default demo: real JPEG work on images that ship inside installed packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnnjpeg._io import atomic_write_bytes
from dnnjpeg.codec import QuantTables, encode, estimate_quality, parse_header

__all__ = ["sample_images", "run_codec_demo"]

_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "camera")


def sample_images(names: tuple[str, ...] = _SAMPLES) -> dict[str, np.ndarray]:
    """scikit-image's bundled photographs (no download): name → uint8 (H, W, 3) or (H, W)."""
    import skimage.data

    return {n: getattr(skimage.data, n)() for n in names}


def run_codec_demo(out: Path) -> list[Path]:
    """Encode each sample at IJG qualities 10/50/90 and with a chroma-coarse table; print a summary.

    Returns the written files (under ``out``).
    """
    from rich.console import Console
    from rich.table import Table

    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    custom = QuantTables(QuantTables.standard(50).luma, QuantTables.standard(50).chroma * 3 // 2)
    settings = {"q10": QuantTables.standard(10), "q50": QuantTables.standard(50), "q90": QuantTables.standard(90), "custom": custom}
    table = Table(title="dnnjpeg codec demo (scikit-image sample photographs)")
    for col in ("file", "size", "subsampling", "bpp", "quality read back", "tables exact"):
        table.add_column(col)
    written = []
    for name, img in sample_images().items():
        for tag, qt in settings.items():
            data = encode(img, qt, subsampling="4:2:0")
            path = atomic_write_bytes(out / f"{name}_{tag}.jpg", data)
            written.append(path)
            h = parse_header(path)
            exact = h.quant_tables().luma.tolist() == qt.luma.tolist()
            bpp = 8 * len(data) / (h.width * h.height)
            table.add_row(path.name, f"{h.width}x{h.height}", h.subsampling, f"{bpp:.3f}", str(estimate_quality(h)), str(exact))
    console.print(table)
    console.print(f"wrote {len(written)} files to {out}/ — try: dnnjpeg info {out}")
    return written
