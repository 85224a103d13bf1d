"""Datasets in every layout dnnjpeg reads, their labels, and the design/eval split.

Layouts (:func:`discover` tells them apart):
  * ``imagefolder``: class sub-folders (``root/<class>/<image>``); label = index of
    the class name in the sorted list of sub-folders — or, when every sub-folder
    is an ImageNet wnid, the ImageNet class index.
  * ``wnid``: a flat folder whose file names start with an ImageNet wnid
    (``n01440764_tench.JPEG``); label = position of the wnid in the sorted list of
    the 1000 ImageNet-1k wnids.
  * ``csv``: a labels CSV with columns ``path,label`` (path relative to the CSV's
    folder; label an integer or a class name).
  * ``unlabeled``: any other folder; the reference is the model's own top-1 on
    the pristine image.

The split: an image belongs to ``design`` when the first 8 bytes of
SHA-256(its file name, without folders) read as a big-endian integer, divided by
2**64, fall below ``design_fraction`` (0.5 by default); else to ``eval``.  It
depends on the name alone, so it is stable across machines, folder moves and
added files, and table design never sees evaluation images.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from dnnjpeg._fs import OUTPUT_MARKER, display, image_kind, not_a_folder, walk_files

__all__ = [
    "ImageRecord",
    "Dataset",
    "discover",
    "find_images",
    "split_of",
    "imagenet_wnids",
    "imagenet_class_names",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
_WNID = re.compile(r"^(n\d{8})(?:[_.\-]|$)")


@lru_cache(maxsize=1)
def _imagenet_table() -> tuple[list[str], list[str]]:
    text = resources.files("dnnjpeg.data").joinpath("imagenet_classes.tsv").read_text()
    rows = [ln.split("\t") for ln in text.splitlines() if ln.strip()]
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows]


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k wnids, sorted: index = class index of ImageNet-trained models."""
    return list(_imagenet_table()[0])


def imagenet_class_names() -> list[str]:
    """Human-readable names in the same order as :func:`imagenet_wnids`."""
    return list(_imagenet_table()[1])


def split_of(name: str, design_fraction: float = 0.5) -> str:
    """``"design"`` or ``"eval"`` for a file name (folders are ignored)."""
    h = hashlib.sha256(Path(name).name.encode("utf-8", "surrogateescape")).digest()
    return "design" if int.from_bytes(h[:8], "big") / 2**64 < design_fraction else "eval"


@dataclass(frozen=True)
class ImageRecord:
    """One image: its path and class index (None when unlabeled)."""

    path: Path
    label: int | None

    @property
    def split(self) -> str:
        return split_of(self.path.name)


@dataclass(frozen=True)
class Dataset:
    """An ordered list of images with a label space.

    Attributes:
        root: where it was found.
        layout: "imagefolder", "wnid", "csv" or "unlabeled".
        records: the images, sorted by path.
        classes: class names in label order (empty when unlabeled).
        label_space: "imagenet" when labels are ImageNet-1k indices, else "custom".
        problems: (path, reason) for entries that could not be listed or opened as files
            (unreadable folders, links to folders, FIFOs...): reported, never silently lost.
    """

    root: Path
    layout: str
    records: tuple[ImageRecord, ...]
    classes: tuple[str, ...]
    label_space: str
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def labeled(self) -> bool:
        return self.layout != "unlabeled"

    def __len__(self) -> int:
        return len(self.records)

    def for_classes(self, names: tuple[str, ...] | list[str] | None) -> Dataset:
        """The same images labelled by a model's own class order (``names``: output i's class name,
        from a class-index file); unchanged for ``None`` or an unlabelled set.

        Raises:
            ValueError: a class of this set that the model does not name (the first few listed).
        """
        if not names or not self.labeled:
            return self
        index = {n: i for i, n in enumerate(names)}
        missing = sorted({self.classes[r.label] for r in self.records if self.classes[r.label] not in index})
        if missing:
            raise ValueError(
                f"{display(self.root)}: classes the model's class-index file does not name: {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        recs = tuple(ImageRecord(r.path, index[self.classes[r.label]]) for r in self.records)
        return Dataset(self.root, self.layout, recs, tuple(names), "custom", self.problems)

    def for_model(self, model) -> Dataset:
        """The labels as ``model`` (a :class:`~dnnjpeg.models.Model`) can be scored on: by its class-index
        file when it has one (:meth:`for_classes`); for an ImageNet classifier, class folders count only
        when they are ImageNet wnids (folders named cats/, 2024/ or good/ are no ImageNet classes: the
        set is then unlabeled for it, measured by agreement); otherwise unchanged.

        Raises:
            ValueError: see :meth:`for_classes`.
        """
        names = model.info.get("classes")
        if names:
            return self.for_classes(names)
        if model.labels == "imagenet" and self.layout == "imagefolder" and self.label_space != "imagenet":
            recs = tuple(ImageRecord(r.path, None) for r in self.records)
            return Dataset(self.root, "unlabeled", recs, (), "custom", self.problems)
        return self

    def subset(self, split: str = "all", limit: int | None = None) -> Dataset:
        """Keep one split ("design", "eval" or "all") and at most ``limit`` images (the first by path)."""
        if split not in ("design", "eval", "all"):
            raise ValueError(f"split must be design, eval or all, got {split!r}")
        recs = [r for r in self.records if split == "all" or r.split == split]
        if limit is not None:
            recs = recs[:limit]
        return Dataset(self.root, self.layout, tuple(recs), self.classes, self.label_space, self.problems)


def find_images(
    root: str | Path,
    hidden: bool = False,
    others: list[str] | None = None,
    unopened: list[tuple[str, str]] | None = None,
) -> tuple[list[str], tuple[tuple[str, str], ...]]:
    """Image files under ``root`` (sorted) and the entries that cannot be opened, with why.

    Content decides, not the name: a file with an image suffix is kept (a broken one is then
    reported by the reader), and so is any other file whose first bytes are an image format's
    magic number (a JPEG saved without an extension). Hidden files are skipped unless ``hidden``, and so is every
    folder below ``root`` that holds a dnnjpeg command's outputs (:data:`~dnnjpeg._fs.OUTPUT_MARKER`):
    a report written inside a data folder never becomes data. ``others``, when given, receives the
    files that are not images (outside output folders), sorted; ``unopened``, when given, the
    (path, why) of the other entries that are never opened (FIFOs, sockets, devices, links to them),
    which are no problem of an image but would be missing from a copy of the tree.
    """
    root = Path(root)
    found, problems = walk_files(root, None, hidden=hidden)
    marked: dict[str, bool] = {}

    def in_output_folder(f: str) -> bool:
        d = os.path.dirname(f)
        chain = []
        while len(d) > len(str(root)) and d not in marked:
            chain.append(d)
            d = os.path.dirname(d)
        hit = marked.get(d, False)
        for c in reversed(chain):
            hit = hit or os.path.lexists(os.path.join(c, OUTPUT_MARKER))
            marked[c] = hit
        return hit

    images = []
    for f in found:
        if in_output_folder(f):
            continue
        if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES or image_kind(f) is not None:
            images.append(f)
        elif others is not None:
            others.append(f)
    if others is not None:
        others.sort()
    keep = tuple((p, why) for p, why in problems if os.path.splitext(p)[1].lower() in IMAGE_SUFFIXES
                 or why.startswith(("cannot list folder", "symlink to a folder")))  # fmt: skip
    if unopened is not None:
        unopened.extend(pw for pw in problems if pw not in keep)
    return sorted(images), keep


def discover(root: str | Path, labels_csv: str | Path | None = None) -> Dataset:
    """Find the images under ``root`` and their labels (see the module doc for layouts).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: a CSV row names an unknown class or lacks columns (message names the row).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{display(root)}: {not_a_folder(root)}")
    wnids = imagenet_wnids()
    wnid_index = {w: i for i, w in enumerate(wnids)}
    if labels_csv is not None:
        return _from_csv(root, Path(labels_csv), wnid_index)
    images, problems = find_images(root)
    images = [Path(f) for f in images]
    try:
        with os.scandir(root) as it:  # class folders: real folders only, a link to one is reported above
            subdirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except OSError as e:
        raise ValueError(f"{display(root)}: cannot list folder: {e.strerror or e}") from None
    top_images = [p for p in images if p.parent == root]
    if subdirs and not top_images:
        if all(d in wnid_index for d in subdirs):
            classes, space = tuple(wnids), "imagenet"
            index = wnid_index
        else:
            classes, space = tuple(subdirs), "custom"
            index = {d: i for i, d in enumerate(subdirs)}
        recs = [
            ImageRecord(p, index[p.relative_to(root).parts[0]]) for p in images if p.relative_to(root).parts[0] in index
        ]
        recs.sort(key=lambda r: (index[r.path.relative_to(root).parts[0]], r.path))
        return Dataset(root, "imagefolder", tuple(recs), classes, space, problems)
    matches = [_WNID.match(p.name) for p in images]
    if images and all(m and m.group(1) in wnid_index for m in matches):
        recs = [ImageRecord(p, wnid_index[m.group(1)]) for p, m in zip(images, matches)]
        return Dataset(root, "wnid", tuple(recs), tuple(wnids), "imagenet", problems)
    return Dataset(root, "unlabeled", tuple(ImageRecord(p, None) for p in images), (), "custom", problems)


def _from_csv(root: Path, csv_path: Path, wnid_index: dict[str, int]) -> Dataset:
    import io

    try:  # a regular file only (a FIFO would block forever), read once, size-capped
        from dnnjpeg._fs import MAX_CONFIG_BYTES, read_regular

        text = read_regular(csv_path, MAX_CONFIG_BYTES, "labels CSV").decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{display(csv_path)}: a labels CSV must be UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ValueError(f"--labels {display(csv_path)}: {e.strerror or e}") from None
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise ValueError(f"{csv_path}: a labels CSV needs a header with columns 'path' and 'label'")
    raw = [r["label"].strip() for r in rows]
    if all(x.lstrip("-").isdigit() for x in raw):
        labels = [int(x) for x in raw]
        classes: tuple[str, ...] = tuple(str(i) for i in range(max(labels) + 1))
        space = "custom"
    elif all(x in wnid_index for x in raw):
        labels = [wnid_index[x] for x in raw]
        classes, space = tuple(imagenet_wnids()), "imagenet"
    else:
        names = sorted(set(raw))
        labels = [names.index(x) for x in raw]
        classes, space = tuple(names), "custom"
    recs = []
    for i, (r, lab) in enumerate(zip(rows, labels), start=2):
        p = Path(r["path"])
        p = p if p.is_absolute() else (csv_path.parent / p)
        if lab < 0:
            raise ValueError(f"{csv_path}:{i}: negative label {lab}")
        recs.append(ImageRecord(p, lab))
    recs.sort(key=lambda r: str(r.path))
    return Dataset(root, "csv", tuple(recs), classes, space)
