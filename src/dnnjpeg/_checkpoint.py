"""Training checkpoints (``OUT.ckpt``) read safely: one clear error for anything that is not one.

A checkpoint is a ``torch.save`` dict of tensors, numbers, strings and lists, read with
``weights_only=True`` (no code runs). Random bytes, a truncated file, a pickle holding code,
or a dict without the keys a trainer needs all end in one ``ValueError`` naming the file, before
any long work, instead of PyTorch's unpickling traceback.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

__all__ = ["load_tensors", "read_checkpoint", "resume", "write_checkpoint"]


def load_tensors(data: bytes):
    """``torch.load`` of ``data`` with ``weights_only`` (no code runs), its warnings silenced.

    Raises:
        ValueError: one line of ours saying why. PyTorch's own message for a blocked pickle advises
            loading the file unsafely: it never reaches the user.
    """
    import torch

    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning says nothing to the user
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 — any unreadable file is one clear error
        text = str(e)
        if "TorchScript" in text:
            why = "a TorchScript archive, not a file torch.save wrote"
        elif "GLOBAL" in text.upper() and ("weights only" in text.lower() or "weights_only" in text):
            why = "it holds Python objects beyond tensors (refused: loading them could run code)"
        elif "weights only" in text.lower() or "weights_only" in text:
            why = "not a file torch.save wrote"
        else:
            lines = text.strip().splitlines()
            why = f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__
        raise ValueError(why) from None


def read_checkpoint(path: str | os.PathLike[str], keys: tuple[str, ...], recipe: object = None) -> dict | None:
    """The checkpoint at ``path``, or None when there is none.

    Args:
        keys: the entries the trainer needs.
        recipe: when given, the checkpoint's ``recipe`` entry must equal it (a run of the same
            settings and images); None skips that check.
    Raises:
        ValueError: not a regular file, not a checkpoint (damaged, truncated, holding code),
            entries missing, or another recipe — the message names the file and what to do.
    """
    from dnnjpeg._fs import MAX_CONFIG_BYTES, display, read_regular

    p = Path(path)
    if not os.path.lexists(p):
        return None
    try:
        ck = load_tensors(read_regular(p, 16 * MAX_CONFIG_BYTES, "checkpoint"))
    except (OSError, ValueError) as e:
        why = (getattr(e, "strerror", None) or str(e)).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"{display(p)}: not a checkpoint dnnjpeg can read ({why[:160]}); remove it to start again"
        ) from None
    missing = [k for k in keys if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise ValueError(f"{display(p)}: a checkpoint without {', '.join(missing)}; remove it to start again")
    if recipe is not None and ck.get("recipe") != recipe:
        raise ValueError(
            f"{display(p)}: a checkpoint of another run (model, images or settings differ); remove it or give "
            "another --out"
        )
    return ck


def resume(path, keys: tuple[str, ...], recipe, module, opt, what: str) -> dict | None:
    """The checkpoint at ``path`` (None: none, or no path) with its ``state`` and ``opt`` loaded into
    ``module`` and ``opt``.

    Raises:
        ValueError: as :func:`read_checkpoint`, or its state does not fit ``module`` (``what`` names it).
    """
    from dnnjpeg._fs import display

    ck = read_checkpoint(path, keys, recipe) if path is not None else None
    if ck is None:
        return None
    try:
        module.load_state_dict(ck["state"])
        opt.load_state_dict(ck["opt"])
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise ValueError(
            f"{display(path)}: a checkpoint that does not fit this {what} ({str(e)[:160]}); remove it to start again"
        ) from None
    return ck


def write_checkpoint(path, state: dict) -> None:
    """``torch.save(state)`` to ``path``, atomically."""
    import torch

    from dnnjpeg._io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
