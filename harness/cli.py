"""The ``harness`` command line."""

from __future__ import annotations

import sys

import click

from .registry import HarnessError


def _load_plugins(paths: tuple[str, ...]) -> None:
    from .registry import load_plugin_file

    for path in paths:
        load_plugin_file(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fdistill-harness")
def cli() -> None:
    """Sequence-level knowledge distillation benchmark (f-DISTILL and friends)."""


@cli.command("run")
@click.option("--task", "task", default="dart", show_default=True, help="Task plugin name (see `harness list`).")
@click.option("--method", "method", default="tvd", show_default=True, help="Method plugin name.")
@click.option("--profile", default="cpu", show_default=True, help="ci | cpu | paper: sizes and sources.")
@click.option("--seed", type=int, default=None, help="Seed of the method stage (default 42).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config field, e.g. --set kd_train.epochs=2 --set method.beta=0.5.")
@click.option("--data-dir", default=None, help="Folder of the task's original release files (data.source=local).")
@click.option("--results-dir", default=None, help="Where runs and the stage cache go (default: results).")
@click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first.")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N | mps")
def run_cmd(task, method, profile, seed, sets, data_dir, results_dir, plugins, device) -> None:
    """Train (or reuse) the teacher, pseudo-labels and pre-distilled student, distil, evaluate."""
    from .config import parse_sets, resolve_config

    _load_plugins(plugins)
    pairs = parse_sets(sets)
    if data_dir is not None:
        from pathlib import Path

        if not Path(data_dir).is_dir():
            raise HarnessError(f"--data-dir {data_dir}: no such folder")
        pairs = [("data.source", "local"), ("data.data_dir", data_dir), *pairs]
    if results_dir is not None:
        pairs.append(("results_dir", results_dir))
    if device is not None:
        pairs.append(("device", device))
    cfg = resolve_config(task, method, profile, seed, pairs)

    from .pipeline import Pipeline
    from .report import format_run_table

    outcome = Pipeline(cfg).run()
    click.echo(format_run_table(outcome))
    reused = [k for k, v in outcome.manifest["stages"].items() if v["reused"]]
    if reused:
        click.echo(f"reused from cache: {', '.join(reused)}")
    click.echo(f"results: {outcome.path}")


@cli.command("list")
@click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first.")
def list_cmd(plugins) -> None:
    """Registered tasks, methods and profiles."""
    from .config import PROFILES
    from .registry import METHODS, TASKS

    _load_plugins(plugins)
    click.echo("tasks:")
    for name in TASKS.names():
        cls = TASKS.get(name)
        click.echo(f"  {name:<22} {_first_line(cls)}")
    click.echo("methods:")
    for name in METHODS.names():
        cls = METHODS.get(name)
        click.echo(f"  {name:<22} [{_prefix_sources(cls)}] {_first_line(cls)}")
    click.echo("profiles:")
    for name in PROFILES:
        click.echo(f"  {name}")


def _prefix_sources(cls) -> str:
    try:  # with default parameters; a plugin whose weights need a task says so instead
        return ", ".join(cls().prefix_weights())
    except Exception:
        return "per task"


def _first_line(cls) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except HarnessError as err:
        click.echo(f"harness: error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        click.echo(f"harness: error: {err.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
