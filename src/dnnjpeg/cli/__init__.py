"""The ``dnnjpeg`` command line: argument parsing only; the work lives in the library.

One module per command group; the commands are registered here, in the order ``--help`` lists them.
"""

from __future__ import annotations

from dnnjpeg._runtime import tune_malloc
from dnnjpeg.cli import check, compress, dct, demo, design, evaluation, models, qnet, survey, train
from dnnjpeg.cli.common import app

__all__ = ["app", "main"]

for _command in (survey.info, survey.survey, compress.compress, check.check):
    app.command()(_command)
app.command("design")(design.design_command())
for _command in (design.presets, models.models, evaluation.evaluate, demo.demo, train.train):
    app.command()(_command)
app.add_typer(qnet.qnet_app, name="qnet")
app.add_typer(dct.dct_app, name="dct")


def plain_help(doc: str | None) -> str | None:
    """A docstring as terminal help: paragraphs joined into lines the terminal wraps itself (a line
    broken in the source is not broken on screen), reST literals (````x````) shown as plain x."""
    import inspect
    import re

    if not doc:
        return doc
    paras = re.split(r"\n\s*\n", inspect.cleandoc(doc))
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paras).replace("``", "")


def _plain_helps(typer_app) -> None:
    """Every command's help (its docstring unless given) made :func:`plain_help`, sub-apps included."""
    for info in typer_app.registered_commands:
        info.help = plain_help(info.help or (info.callback.__doc__ if info.callback else None))
    for group in typer_app.registered_groups:
        _plain_helps(group.typer_instance)
        inst = group.typer_instance.info
        inst.help = plain_help(inst.help if isinstance(inst.help, str) else None)


_plain_helps(app)


def main() -> None:
    """Console-script entry point."""
    tune_malloc()
    app()
