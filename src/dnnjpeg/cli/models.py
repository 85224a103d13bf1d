"""``dnnjpeg models``: the built-in classifiers and the preprocessing each expects."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dnnjpeg.cli.common import _fail


def models(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model on stdout.")] = False,
) -> None:
    """The built-in classifiers: input size, resize, interpolation, mean and std, and the --preprocess
    string to give with your own export of the same network (an export does not carry its
    preprocessing: without it, ImageNet's mean and std are assumed)."""
    from dnnjpeg.models import ModelUnavailableError, available_models, load_model

    rows = []
    for name in available_models():
        try:
            m = load_model(name)
        except ModelUnavailableError as e:
            raise _fail(str(e)) from None
        rows.append({"name": name, "classes": m.num_classes, "preprocess": m.preprocess.spec()})
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    width = max(len(r["name"]) for r in rows) if rows else 0
    for r in rows:  # plain lines, never cut at the terminal's width: the string is meant to be copied
        print(f"{r['name']:<{width}}  {r['classes']} classes  --preprocess {r['preprocess']}")
