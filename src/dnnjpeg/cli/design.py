"""``design`` (one flag per designer option, from the registry) and ``presets``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from rich.markup import escape

from dnnjpeg.cli.common import (
    _CLASSES_HELP,
    _EVAL_OUTPUTS,
    _OVERWRITE_HELP,
    _PREPROCESS_HELP,
    _fail,
    _model_name,
    _out_file,
    _out_folder,
    err,
    progress_bar,
)  # fmt: skip
from dnnjpeg.cli.evaluation import _AT_HELP, _MODEL_HELP, EvaluationSettings, _run_evaluation


def _design_command(
    method: str = typer.Option(..., "--method", help="The designer (see the list above)."),
    data: Path = typer.Option(..., "--data", help="Image folder; only its design split is used to design."),
    out: Path = typer.Option(Path("table.json"), "--out", help="Where the designed table JSON goes."),
    model: str = typer.Option("efficientnet-lite0", "--model", help=_MODEL_HELP),
    preprocess: str | None = typer.Option(None, "--preprocess", help=_PREPROCESS_HELP),
    classes: Path | None = typer.Option(None, "--classes", help=_CLASSES_HELP),
    at: str = typer.Option("input", "--at", help=_AT_HELP),
    subsampling: str = typer.Option("4:2:0", "--subsampling", help="4:2:0 or 4:4:4: part of the design."),
    budget: int = typer.Option(60, "--budget", help="Table measurements a search may spend."),
    seed: int = typer.Option(0, "--seed", help="Seed of the search and of the images it measures."),
    trial_images: int = typer.Option(200, "--trial-images", help="Design images per measurement."),
    objective: str = typer.Option(
        "kl", "--objective", help="kl (smooth, default) | top1 | pareto (bayes: Pareto set)."
    ),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL, e.g. sqlite:///study.db (resumable)."
    ),
    labels: Path | None = typer.Option(None, "--labels", help="Labels CSV with columns path,label."),
    report: Path | None = typer.Option(
        None, "--report", help="Re-measure on the eval split against the ladder; report folder."
    ),
    eval_limit: int | None = typer.Option(None, "--eval-limit", help="At most this many eval images for --report."),
    overwrite: bool = typer.Option(False, "--overwrite", help=_OVERWRITE_HELP),
    **given,
) -> None:
    from dnnjpeg._fs import display

    _out_file(out, [data, labels], overwrite)
    if report is not None:
        _out_folder(report, [data, labels], _EVAL_OUTPUTS, overwrite, "--report", create=False)  # made by evaluate
    model = _model_name(model, preprocess, classes)
    problem = (data, labels, model, at, subsampling, budget, seed, trial_images, objective, storage)
    res = _designed(method, problem, {k: v for k, v in given.items() if v is not None})
    try:
        res.save(out)
    except OSError as e:
        raise _fail(f"writing {display(out)}: {e.strerror or e}") from None
    err.print(
        f"{method}: {res.info['trials_used']} measurements on {res.info['trial_images']} design images in "
        f"{res.info['wall_seconds']:.0f} s; wrote {display(out)}",
        highlight=False,
    )
    if report is not None:
        # A designer that returns a family of tables (one per rate) is judged as that family.
        test = f"sweep:{out}" if res.family is not None and len(res.family) >= 2 else f"tables:{out}"
        settings = EvaluationSettings(
            data=data, labels=labels, model=model, codecs=[f"standard@{subsampling}", f"{test}@{subsampling}"],
            subsampling=subsampling, at=at, split="eval", limit=eval_limit, out=report, seed=seed, overwrite=overwrite,
        )  # fmt: skip
        _run_evaluation(settings)


def _designed(method: str, problem: tuple, given: dict):
    """Run the designer with a progress bar; the design images that could not be read named."""
    from dnnjpeg._fs import display
    from dnnjpeg.data import discover
    from dnnjpeg.design import DesignProblem, designers
    from dnnjpeg.design import design as run_design
    from dnnjpeg.models import ModelUnavailableError, load_model

    data, labels, model, at, subsampling, budget, seed, trial_images, objective, storage = problem
    try:
        options = _designer_options(designers(), method, given)
        if objective == "pareto":
            if method != "bayes":
                raise ValueError("--objective pareto is for --method bayes (a Pareto set of tables)")
            options = replace(options, objective_mode="pareto")
        m = load_model(model)
        ds = discover(data, labels).for_model(m)
        prob = DesignProblem(ds, m, at, subsampling, budget, seed, trial_images,
                             "kl" if objective == "pareto" else objective, storage)  # fmt: skip
        with progress_bar(f"design {method}", err, "{task.fields[best]}") as bar:
            task = bar.add_task("", total=budget, best="")
            prob.progress = lambda i, n, g: bar.update(task, completed=i, best=f"best gain {g:+.3f}")
            res = run_design(method, prob, options)
    except (ValueError, FileNotFoundError, ModelUnavailableError) as e:
        raise _fail(str(e)) from None
    for f, msg in prob.skipped.items():
        err.print(f"[yellow]skipped[/yellow] {escape(display(f))}: {escape(msg)}", highlight=False)
    return res


def _designer_options(registry: dict, method: str, given: dict):
    """The chosen designer's options dataclass from the flags given (None = not given).

    Raises ValueError for an unknown method, a flag the method does not take (named, with
    the flags it does take), or a value its kind cannot read.
    """
    import dataclasses

    if method not in registry:
        raise ValueError(f"unknown design method {method!r}; choose from {', '.join(registry)}")
    fields = {f.name: f for f in dataclasses.fields(registry[method].options) if f.metadata.get("cli", True)}
    bad = [k for k in given if k not in fields]
    if bad:
        takes = ", ".join(_flag(k) for k in fields) or "no options of its own"
        raise ValueError(f"{', '.join(_flag(k) for k in bad)}: not an option of {method} (it takes {takes})")
    values = {}
    for k, v in given.items():
        if fields[k].metadata.get("kind") == "floats":
            try:
                values[k] = tuple(float(x) for x in str(v).split(",") if x.strip())
            except ValueError:
                raise ValueError(f"{_flag(k)} {v!r}: give comma-separated numbers, e.g. 0.5,1,2") from None
            if not values[k]:
                raise ValueError(f"{_flag(k)}: give at least one number")
        else:
            values[k] = v
    return registry[method].options(**values)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def design_command():
    """``design`` with one flag per designer option, generated from the registry: each
    flag's help names the methods that take it, and a flag another method does not take is
    refused, not silently dropped."""
    import dataclasses
    import inspect

    from dnnjpeg.design import designers

    registry = designers()
    seen: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name, d in registry.items():
        for f in dataclasses.fields(d.options):
            if f.metadata.get("cli", True):
                seen.setdefault(f.name, (f, []))[1].append(name)
    types = {"bool": bool | None, "int": int | None, "float": float | None, "str": str | None, "floats": str | None}
    params = [p for p in inspect.signature(_design_command).parameters.values() if p.kind != p.VAR_KEYWORD]
    for name, (f, methods) in seen.items():
        kind = f.metadata["kind"]
        default = f.default if not isinstance(f.default, tuple) else ",".join(f"{x:g}" for x in f.default)
        help_ = f"{f.metadata['help']} ({', '.join(methods)}; default {default})"
        flag = _flag(name) if kind != "bool" else f"{_flag(name)}/--no-{name.replace('_', '-')}"
        opt = typer.Option(None, flag, help=help_, show_default=False)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=types[kind]))
    _design_command.__signature__ = inspect.Signature(params)
    _design_command.__doc__ = (
        "Design quantization tables favorable to a network (design split only); optionally re-measure "
        "them on the held-out eval split against the standard ladder.\n\nMethods:\n\n"
        + "\n\n".join(f"{n}: {d.summary}" for n, d in registry.items())
    )
    return _design_command


def presets(
    name: str | None = typer.Argument(None, help="One preset: its tables, design settings and measured curve."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
    plot: Path | None = typer.Option(
        None, "--plot", help="With NAME: draw its measured curve beside the ladder (PNG)."
    ),
) -> None:
    """The designed tables shipped with dnnjpeg (``--codec preset:NAME``), with what each
    was designed for and its BD-rate against the ladder on the held-out eval split."""
    from dnnjpeg.presets import available_presets, load_preset, preset_info, preset_result, preset_summary

    try:
        rows = [preset_summary(n) for n in ([name] if name else available_presets())]
    except ValueError as e:
        raise _fail(str(e)) from None
    if as_json:
        print(json.dumps(preset_info(name) if name else rows, indent=1))
    else:
        # Plain aligned lines, not a rich table: the names and intervals must not wrap in a pipe or a narrow terminal.
        print(
            "BD-rate: % bits against the standard ladder at equal top-1 (negative = fewer bits); on KL: at equal KL "
            "to the pristine output; held-out eval split, 95% bootstrap intervals; Δtop-1: points at equal rate"
        )
        w = max([len("name")] + [len(r["name"]) for r in rows]) + 1
        print(
            f"{'name':<{w}} {'model':<18} {'at':<8} {'sub':<6} {'method':<11} {'images':>6}  {'BD-rate %':<20} "
            f"{'on KL %':<20} Δtop-1"
        )

        def bd(v, ci):
            return "n/a" if v is None else f"{v:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]"

        for r in rows:
            acc = "n/a" if r["bd_accuracy"] is None else f"{r['bd_accuracy']:+.2f}"
            print(
                f"{r['name']:<{w}} {r['model']!s:<18} {r['at']!s:<8} {r['subsampling']!s:<6} {r['method']!s:<11} "
                f"{r['n_images']!s:>6}  {bd(r['bd_rate'], r['bd_rate_ci']):<20} "
                f"{bd(r['bd_rate_kl'], r['bd_rate_kl_ci']):<20} {acc}"
            )
        for r in rows:
            if r.get("by_rate_bd_rate") is not None:
                print(
                    f"{r['name']}, chosen per image by rate (compress --choose rate --family preset:{r['name']}): "
                    "BD-rate "
                    f"{bd(r['by_rate_bd_rate'], r['by_rate_bd_rate_ci'])}, on KL {r['by_rate_bd_rate_kl']:+.1f}"
                )
        if name:
            q = load_preset(name)
            for label, table in (("luma", q.luma), ("chroma", q.chroma)):
                print(f"{label} (natural order):")
                for row in table:
                    print("   " + " ".join(f"{int(x):3d}" for x in row))
    if plot is not None:
        if not name:
            err.print("[red]error:[/red] --plot needs a preset NAME", highlight=False)
            raise typer.Exit(2)
        from dnnjpeg.evaluate.report import plot_curves

        err.print(f"wrote {plot_curves(preset_result(name), plot)}")
