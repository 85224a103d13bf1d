"""The ``dnnjpeg`` command line: argument parsing only; the work lives in the library.

One module per command group; the commands are registered here, in the order ``--help`` lists them.
"""

from __future__ import annotations

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.cli import check, compress, dct, demo, design, evaluation, qnet, survey, train
from dnnjpeg.cli.common import app

__all__ = ["app", "main"]

for _command in (survey.info, survey.survey, compress.compress, check.check):
    app.command()(_command)
app.command("design")(design.design_command())
for _command in (design.presets, evaluation.evaluate, demo.demo, train.train):
    app.command()(_command)
app.add_typer(qnet.qnet_app, name="qnet")
app.add_typer(dct.dct_app, name="dct")


def main() -> None:
    """Console-script entry point."""
    tune_malloc()
    app()
