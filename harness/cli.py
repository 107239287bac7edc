"""The ``harness`` command line."""

from __future__ import annotations

import sys

import click

from ._runtime import tune_allocator
from .requirements import check_libraries
from .config import PROFILE_NOTES
from .errors import HarnessError
from .store.io import check_writable_folder


def _load_plugins(paths: tuple[str, ...]) -> None:
    from .registry import load_plugin_file

    for path in paths:
        load_plugin_file(path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fdistill-harness")
def cli() -> None:
    """Sequence-level knowledge distillation benchmark (f-DISTILL and friends)."""


def cell_options(command):
    """The options that name one cell: task, method, profile, seed, ``--set`` and plugin files."""
    for option in reversed((
        click.option("--task", "task", default="dart", show_default=True, help="Task plugin name (see `harness list`)."),
        click.option("--method", "method", default="tvd", show_default=True, help="Method plugin name."),
        click.option("--profile", default="cpu", show_default=True,
                     help="ci | cpu | paper: sizes and sources (ci: a plumbing check whose scores mean nothing)."),
        click.option("--seed", type=int, default=None, help="Seed of the method stage (default 42)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override any config field, e.g. --set kd_train.epochs=2 --set method.beta=0.5."),
        click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first."))):
        command = option(command)
    return command


RESULTS_DIR_HELP = "The results store: runs, stage cache, locks and records."
REPORT_TO_HELP = ("Report each run's resolved config, training curves (loss per step, validation score per check) and "
                  "final metrics to experiment trackers through Accelerate: tensorboard, wandb, mlflow (repeatable or "
                  "a comma list; default none). Their files go to RESULTS_DIR/tracking/<run_id>/, beside the run's "
                  "folder RESULTS_DIR/runs/<run_id>/ (e.g. tensorboard --logdir RESULTS_DIR/tracking). Not "
                  "configuration: no run id, stage key or number changes.")


def report_to_option(command):
    return click.option("--report-to", "report_to", multiple=True, metavar="TRACKER[,TRACKER]",
                        help=REPORT_TO_HELP)(command)


def trackers(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--report-to``'s trackers, their names and packages checked (one line, exit 2, before any work)."""
    from .tracking import check_installed, parse_report_to

    names = parse_report_to(values)
    check_installed(names)
    return names


THREADS_NOTE = "Float sums depend on it: the committed report's stages were built with one thread each."
THREADS_HELP = "torch CPU threads (default: torch's own, one per core). " + THREADS_NOTE


def set_threads(threads: int | None) -> None:
    """torch's CPU threads for what this command builds (None: leave torch's own)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@cli.command("run")
@cell_options
@click.option("--data-dir", default=None, help="Folder of the task's original release files (data.source=local).")
@click.option("--results-dir", default=None, help=RESULTS_DIR_HELP + "  [default: results]")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N | mps")
@click.option("--trust-remote-code", is_flag=True, help="Allow a pretrained hub model to run its own Python code.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP)
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="Train data-parallel on N local processes (gloo on CPU, NCCL on CUDA, one per GPU), each on its "
                   "shard of every batch: the training batch is N x train.batch_size. Default: 1, or what "
                   "torchrun / accelerate launch set.")
@report_to_option
def run_cmd(task, method, profile, seed, sets, plugins, data_dir, results_dir, device, trust_remote_code,
            threads, processes, report_to) -> None:
    """Train (or reuse) the teacher, pseudo-labels and pre-distilled student, distil, evaluate."""
    from .config import parse_sets, resolve_config

    report_to = trackers(report_to)
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
    if trust_remote_code:
        pairs.append(("teacher.trust_remote_code", "true"))
    from ._runtime import launched_processes

    if processes is None and launched_processes() > 1:   # under torchrun / accelerate launch
        processes = launched_processes()
    if processes is not None:
        pairs.append(("processes", str(processes)))
    cfg = resolve_config(task, method, profile, seed, pairs)
    from .lm import resolve_device

    run_device = resolve_device(cfg.device)   # a device this machine lacks: one line now, not a traceback after a stage
    check_writable_folder(cfg.results_dir, "--results-dir")

    from . import distributed   # imports torch: after the checks above, so that their errors come in a blink

    processes = distributed.check_processes(cfg.processes, run_device)
    if processes > 1 and distributed.launched_processes() == 1:   # start the ranks, each runs this command
        sys.exit(distributed.launch(processes, sys.argv[1:]))
    distributed.init_from_environment(run_device)

    from .grid.cells import run_and_record
    from .reporting.run_table import format_run_table

    set_threads(threads)
    outcome = run_and_record(cfg, report_to)
    if outcome is None:    # a data-parallel rank other than 0: rank 0 wrote the run
        return
    click.echo(format_run_table(outcome))
    if cfg.profile in PROFILE_NOTES:
        click.echo(f"note: {PROFILE_NOTES[cfg.profile]}")
    reused = [k for k, v in outcome.manifest["stages"].items() if v["reused"]]
    if reused:
        click.echo(f"reused from cache: {', '.join(reused)}")
    click.echo(f"results: {outcome.path}")


UNTIL_DECIDED_HELP = (
    "Add seeds until these comparisons are decided in every task (and axis value or teacher): A>B (A better than B: "
    "the interval excludes 0), A~B (as good as: equivalent within --margin), @METRIC for another metric than the "
    "primary, or the findings' claim 2, 4, 6c or 7 (6c and 7: each f-DISTILL method vs SeqKD). The cells' seeds "
    "(3 or more) are the first look; each round adds --seeds-per-round seeds to the cells of the undecided ones, up to --max-seeds. Group-sequential intervals keep "
    "95% when n depends on the data (docs/sequential.md); killed and rerun, it goes on from the results folder.")


def until_decided_options(command):
    """``--until-decided`` and its design's options (``grid`` and ``compare``); checked by
    :func:`_until_decided_options`."""
    for option in reversed((
        click.option("--until-decided", "until_decided", default=None, metavar="A>B,A~B,CLAIM",
                     help=UNTIL_DECIDED_HELP),
        click.option("--max-seeds", type=click.IntRange(min=1), default=None,
                     help="--until-decided: the most seeds per cell (the design's last look).  [default: 10]"),
        click.option("--seeds-per-round", type=click.IntRange(min=1), default=None,
                     help="--until-decided: seeds added per round to each cell being grown.  [default: 2]"),
        click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="--until-decided: stop adding rounds once the comparisons' runs took this many "
                          "process-minutes (checked before each round; compare: the runs trained here)."),
        click.option("--margin", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="--until-decided: the equivalence margin of A~B, in the metric's points.  "
                          "[default: 1.0, claim 5's]"))):
        command = option(command)
    return command


@cli.command("grid")
@click.argument("spec", required=False, default="table2")
@click.option("--tasks", default=None, metavar="A,B|all", help="Replace the spec's tasks.")
@click.option("--methods", default=None, metavar="A,B|all", help="Replace the spec's methods.")
@click.option("--seeds", default=None, metavar="S1,S2", help="Replace the spec's seeds (method-stage seeds).")
@click.option("--profile", default=None, help="ci | cpu | paper (default: the spec's).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config field in every cell (method.NAME: in the methods that have NAME; "
                   "predistill.NAME: in those that start from the pre-distilled student).")
@click.option("--axis", "axes", multiple=True, metavar="KEY=V1,V2",
              help="Sweep a config field (added to the spec's axes, or replacing one), e.g. --axis method.beta=0.5,0.85.")
@click.option("--results-dir", default="results", show_default=True, help=RESULTS_DIR_HELP)
@click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first.")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N | mps")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine; ray: each cell a Ray task.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="local: cells at once, each in its own worker process (1: in this process).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="local: torch CPU threads per cell (default: the cores shared among the workers). " + THREADS_NOTE)
@click.option("--address", default=None, help="ray: the cluster to join (e.g. auto, ray://head:10001); "
                                               "default RAY_ADDRESS or a new local instance.")
@click.option("--cpus-per-cell", type=float, default=None, help="ray: CPUs per cell (default: the spec's).")
@click.option("--gpus-per-cell", type=float, default=None,
              help="ray: GPUs per cell (default: the spec's); N > 1 (an integer): the cell trains data-parallel on "
                   "N processes on one node, one per GPU.")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="local: each cell trains data-parallel on N processes (gloo on CPU, NCCL on CUDA, one per GPU), "
                   "its training batch N x train.batch_size; the cells run one after another.")
@click.option("--dry-run", is_flag=True, help="List the cells and what each would build or reuse; run nothing.")
@click.option("--yes", is_flag=True, help="Plan or run a grid of more than 500 cells (without it, such a grid only "
                                          "prints its size).")
@report_to_option
@click.option("--select-on", type=click.Choice(["validation"]), default=None,
              help="After the grid: per task and method, choose the swept values (the axes) whose models have the best "
                   "mean validation score over the seeds (the selection metric that checkpoint selection uses), and "
                   "show test scores for the chosen values only; the choice goes into the grid record. Never on test.")
@until_decided_options
def grid_cmd(spec, tasks, methods, seeds, profile, sets, axes, results_dir, plugins, device, executor, workers,
             threads, address, cpus_per_cell, gpus_per_cell, processes, dry_run, yes, report_to, select_on,
             until_decided, max_seeds, seeds_per_round, max_minutes, margin) -> None:
    """Run a grid of cells (tasks × methods × seeds × axes): only what is not done yet.

    SPEC is a shipped grid (table2, table2_teachers, table2_real, figure2, table4, store_ksweep,
    calibration) or a TOML/YAML spec file. Killed and run again, it finishes what is missing; failed
    cells are listed at the end (exit code 1) with their records in RESULTS/failed/.
    """
    from pathlib import Path

    from .config import PROFILES, parse_sets
    from .errors import UnknownNameError
    from .grid import expand, format_plan, load_spec, plan_grid, run_grid, with_overrides
    from .grid.executors import cell_processes, check_local_options
    from .grid.spec import MAX_CELLS_UNASKED, count_cells

    check_local_options(executor, workers, threads)   # before any work
    report_to = trackers(report_to)
    if processes is not None:
        cell_processes(executor, processes, 0, workers)
    _load_plugins(plugins)
    grid = with_overrides(load_spec(spec), tasks=tasks, methods=methods, seeds=seeds, axes=axes)
    if profile is not None and profile not in PROFILES:
        raise UnknownNameError("profile", profile, list(PROFILES))
    grid = grid.for_profile(profile)
    gpus = gpus_per_cell if gpus_per_cell is not None else grid.resources.get("gpus", 0)
    processes = cell_processes(executor, processes, gpus, workers)
    pairs = parse_sets(sets)
    if device is not None:
        pairs.append(("device", device))
    if select_on is not None:
        from .grid.spec import check_sweeps

        check_sweeps(grid)
    from .grid.spec import METHOD_ORDER, TASK_ORDER, resolve_names
    from .registry import METHODS, TASKS

    named = ((resolve_names(grid.methods, METHODS, METHOD_ORDER), resolve_names(grid.tasks, TASKS, TASK_ORDER))
             if until_decided is not None else ((), ()))
    sequential = _until_decided_options(grid.seeds, *named, until_decided, max_seeds, seeds_per_round, max_minutes,
                                        margin, select_on)
    size = count_cells(grid)
    if size > MAX_CELLS_UNASKED and not yes:
        raise HarnessError(f"grid {grid.name} has {size} cells (tasks × methods × seeds × axes), more than "
                           f"{MAX_CELLS_UNASKED}: add --yes to plan and run them all, or narrow it with --tasks, "
                           f"--methods, --seeds or --axis")
    cells = expand(grid, str(Path(results_dir).resolve()), pairs, tuple(str(Path(p).resolve()) for p in plugins),
                   processes)
    if report_to:
        import dataclasses

        cells = [dataclasses.replace(cell, report_to=report_to) for cell in cells]
    if select_on is not None:
        from .grid.spec import check_selectable

        check_selectable(cells)   # before any work: something swept, and every model validated
    if executor == "local" and not dry_run:
        from . import distributed
        from .lm import resolve_device

        # this machine runs the cells: a device it lacks is one line now, not a failure in every cell
        for name in sorted({str(v) for c in cells for k, v in (*c.values, *c.sets) if k == "device"}):
            resolve_device(name)
        if processes > 1:   # more CUDA processes than GPUs: one line now
            for name in sorted({c.config().device for c in cells}):
                distributed.check_processes(processes, resolve_device(name))
    if not dry_run:
        check_writable_folder(results_dir, "--results-dir")
    if dry_run:
        from .grid.cost import estimate_grid

        plans = plan_grid(cells)
        # GPU-hours only where the cells run on the paper's data (the sizes the estimate knows).
        costs = estimate_grid(plans) if grid.profile == "paper" else None
        click.echo(format_plan(plans, grid.name, grid.profile, costs))
        if costs is None:   # elsewhere: priced at the stage seconds this store measured
            from .grid.measured import (estimate_measured, format_measured, format_measured_wall_clock,
                                        measured_graph, measured_stage_seconds)

            measured = measured_stage_seconds(results_dir)
            for line in format_measured(estimate_measured(plans, measured)):
                click.echo(line)
            for line in format_measured_wall_clock(measured_graph(plans, measured), (1, 2, workers)):
                click.echo(line)
        if sequential is None:
            return

    def run(todo):
        report = run_grid(todo, grid.name, grid.profile, executor=executor, workers=workers, address=address,
                          cpus=cpus_per_cell if cpus_per_cell is not None else grid.resources.get("cpus", 1),
                          gpus=gpus, threads=threads, echo=click.echo)
        click.echo(report.summary())
        return report

    if sequential is not None:
        from dataclasses import replace

        from .grid.until_decided import run_until_decided

        comparisons, design, seed_list = sequential
        involved = sorted({m for c in comparisons for m in (c.a, c.b)})
        grown = expand(replace(grid, methods=involved, seeds=seed_list), str(Path(results_dir).resolve()), pairs,
                       tuple(str(Path(p).resolve()) for p in plugins), processes)
        if report_to:
            grown = [replace(cell, report_to=report_to) for cell in grown]
        reports = []

        def run_round(todo):
            reports.append(run(todo))
            return reports[-1]

        run_until_decided(cells, grown, comparisons, design, seed_list, grid.name, grid.profile, run_round,
                          max_minutes, click.echo, dry_run)
        if any(r.failed for r in reports):
            sys.exit(1)
        return
    report = run(cells)
    if select_on is not None:
        from .grid.runner import record_selection
        from .reporting.selection import format_selection, select_on_validation

        selections = select_on_validation(cells, cells[0].results_dir)
        click.echo(format_selection(selections))
        if report.record is not None:
            record_selection(report.record, selections)
    if report.failed:
        sys.exit(1)   # (ctx.exit would only be returned by main() outside standalone mode)


def _until_decided_options(seeds, methods, tasks, until_decided, max_seeds, seeds_per_round, max_minutes, margin,
                           select_on=None):
    """``--until-decided``'s comparisons, design and seed order, checked before any work (None without it):
    ``seeds`` the first look's (the cells' seeds), ``methods`` and ``tasks`` the names its comparisons may name
    and the tasks their metrics are read in, ``select_on`` grid's (the two exclude each other)."""
    given = {"--max-seeds": max_seeds, "--seeds-per-round": seeds_per_round, "--max-minutes": max_minutes,
             "--margin": margin}
    if until_decided is None:
        used = [name for name, value in given.items() if value is not None]
        if used:
            raise HarnessError(f"{', '.join(used)}: only with --until-decided")
        return None
    if select_on is not None:
        raise HarnessError("--until-decided and --select-on: choose one (a selection over axes is not a sequential "
                           "design)")
    from .grid.until_decided import check_design, check_metrics, parse_comparisons
    from .paper.claims import NEAR_BEST_MARGIN
    from .reporting.sequential import seed_order

    start = len(set(seeds))
    margin = NEAR_BEST_MARGIN if margin is None else margin
    design = check_design(start, max(10, start) if max_seeds is None else max_seeds,
                          2 if seeds_per_round is None else seeds_per_round, max_minutes, margin)
    comparisons = parse_comparisons(until_decided, list(methods), margin)
    check_metrics(comparisons, list(tasks))
    return comparisons, design, seed_order(seeds, design.max_seeds)


@cli.command("report")
@click.option("--results-dir", "--results", "results_dir", default="results", show_default=True,
              help="The results store to read.")
@click.option("--out", "out_dir", default=None,
              help="Where tables, figures and the page go (default: RESULTS_DIR/report); its old contents are replaced.")
@click.option("--compare", type=click.Choice(["paper"]), multiple=True,
              help="Set the paper's published numbers beside ours, with Kendall τ of the KD methods' order.")
@click.option("--baseline", default="predistill", show_default=True,
              help="Row that † compares every other row with (seed and test-input noise; rows with 3 seeds or more); "
                   "'none' for no test.")
@click.option("--bootstrap-samples", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option("--screenshot", is_flag=True, help="Also write report.png of the page (needs Chromium).")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="Draw the figures (most of a report's time); --no-figures: tables and the page only.")
@click.option("--readme", "readmes", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A Markdown file (e.g. README.md) whose generated blocks (<!-- generated: KIND_PROFILE -->) are "
                   "re-rendered from this report's tables; repeatable.")
def report_cmd(results_dir, out_dir, compare, baseline, bootstrap_samples, screenshot, figures, readmes) -> None:
    """Tables (Markdown, LaTeX, CSV), plots (PNG, SVG) and one HTML page, from the results store alone."""
    from pathlib import Path

    from .reporting.build import build_report, default_out

    if not Path(results_dir).is_dir():   # (reading it would leave an empty folder of that name behind)
        raise HarnessError(f"--results-dir {results_dir}: no such folder; `harness run` or `harness grid` writes one")
    out_dir = out_dir or str(default_out(results_dir))
    check_writable_folder(out_dir, "--out")
    explicit = click.get_current_context().get_parameter_source("baseline") != click.core.ParameterSource.DEFAULT
    report = build_report(results_dir, out_dir, tuple(compare), None if baseline.lower() == "none" else baseline,
                          bootstrap_samples, screenshot, check_baseline=explicit, figures=figures)
    click.echo(f"{len(report.tables)} tables, {len(report.figures)} figures → {report.out}/report.html")
    if readmes:
        from .reporting.prose import render_blocks

        for readme in map(Path, readmes):
            try:
                text = render_blocks(readme.read_text(encoding="utf-8"), report.out / "tables")
            except (ValueError, FileNotFoundError) as err:
                raise HarnessError(f"--readme {readme}: {err}") from None
            readme.write_text(text, encoding="utf-8")
            click.echo(f"{readme}: generated blocks re-rendered from {report.out}/tables")


def _teacher_seeds(teachers: str | None) -> tuple[int, ...]:
    """``--teachers U1,U2``: upstream seeds (one line if not integers); () when not given."""
    from .grid.spec import parse_list

    try:
        return tuple(int(s) for s in parse_list(teachers)) if teachers else ()
    except ValueError:
        raise HarnessError(f"--teachers {teachers}: give upstream seeds (integers), e.g. --teachers 42") from None


@cli.group("bundle")
def bundle_cmd() -> None:
    """The reference bundle: a store's upstream stages and baseline runs, packed to ship with the repository."""


@bundle_cmd.command("build")
@click.option("--results-dir", default="results", show_default=True, help="The store to pack.")
@click.option("--out", "out_dir", default="reference", show_default=True,
              help="The bundle folder (replaced whole; its README.md stays).")
@click.option("--tasks", default=None, metavar="A,B", help="Pack only these tasks' runs (default: all).")
@click.option("--profile", "profiles", multiple=True, help="Pack only this profile's runs (repeatable; default: all).")
@click.option("--teachers", default=None, metavar="U1,U2",
              help="Pack the upstream stages (teacher, pseudo-labels, pre-distilled student, …) of the runs at these "
                   "teacher seeds only; every run's records all the same (default: every teacher's stages).")
@click.option("--store-k", default=None, type=click.IntRange(min=1), metavar="K",
              help="Pack the teacher-output stores of the runs at this teacher_outputs_k only; every run's records "
                   "all the same (default: the k the k-sweep justifies, 32).")
@click.option("--every-store-k", is_flag=True, help="Pack the teacher-output stores of every k (the exact one too).")
def bundle_build_cmd(results_dir, out_dir, tasks, profiles, teachers, store_k, every_store_k) -> None:
    """Pack per twin the upstream stages (tokenizer, teacher, pseudo-labels, teacher-output store, pre-distilled
    student, their evaluations) and every run's records: xz archives in parts of at most 20 MB, 80 MB in all."""
    from pathlib import Path

    from .grid.spec import parse_list
    from .store.bundle import EMBEDDED, MB, SHIPPED_STORE_K, build_bundle, twin_name

    if every_store_k and store_k is not None:
        raise HarnessError("--store-k and --every-store-k: give one of them")
    if not Path(results_dir).is_dir():
        raise HarnessError(f"--results-dir {results_dir}: no such folder")
    teacher_list = _teacher_seeds(teachers)
    check_writable_folder(out_dir, "--out")
    built = build_bundle(results_dir, out_dir, tasks=tuple(parse_list(tasks)) if tasks else (),
                         profiles=tuple(profiles), teachers=teacher_list,
                         store_k=None if every_store_k else SHIPPED_STORE_K if store_k is None else store_k)
    for name, size in sorted(built.sizes.items()):
        click.echo(f"  {name}  {size / MB:.2f} MB")
    runs = sum(len(t["runs"]) for t in built.manifest["twins"])
    for twin in built.manifest["twins"]:
        stages = (f"upstream stages of teachers {', '.join(map(str, twin['teachers']))}" if twin["teachers"]
                  else "records only")
        name = twin_name(twin["task"], twin["profile"], twin.get("source", EMBEDDED))
        click.echo(f"  {name}: {len(twin['runs'])} runs, {stages}")
    click.echo(f"{len(built.manifest['twins'])} twins, {runs} runs, {sum(built.sizes.values()) / MB:.2f} MB "
               f"→ {built.out}")


@bundle_cmd.command("import")
@click.argument("bundle", default="reference")
@click.option("--results-dir", default="results", show_default=True, help="The results folder to unpack into.")
def bundle_import_cmd(bundle, results_dir) -> None:
    """Unpack BUNDLE (default: reference) into a results folder, every file checked against its checksum first;
    then `harness report --results-dir RESULTS_DIR` renders the baselines' report."""
    from .store.bundle import import_bundle

    check_writable_folder(results_dir, "--results-dir")
    done = import_bundle(bundle, results_dir)
    click.echo(f"{done.summary()} → {results_dir}")


@bundle_cmd.command("check")
@click.argument("bundle", default="reference")
@click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first.")
@click.option("--strict", is_flag=True, help="Exit 1 when the bundle is stale (default: warn and exit 0).")
def bundle_check_cmd(bundle, plugins, strict) -> None:
    """Warn when BUNDLE's stage keys are no longer those this code plans (a stale bundle); no bundle: nothing to do."""
    from pathlib import Path

    from .grid.reference import stale_message, stale_runs
    from .store.bundle import MANIFEST, compared_twins, read_manifest

    _load_plugins(plugins)
    if not (Path(bundle) / MANIFEST).is_file():
        click.echo(f"no reference bundle at {bundle}: nothing to check")
        return
    manifest = read_manifest(bundle)
    stale = stale_runs(manifest)
    if not stale:
        runs = sum(len(t["runs"]) for t in compared_twins(manifest))
        records = sum(len(t["runs"]) for t in manifest["twins"]) - runs
        click.echo(f"reference bundle {bundle}: the stage keys of its {runs} runs are this code's"
                   + (f" ({records} runs of released text are records for the report, not checked)" if records else ""))
        return
    click.echo(f"warning: {stale_message(bundle, manifest, stale)}", err=True)
    if strict:
        sys.exit(1)


@cli.command("compare")
@click.option("--method", required=True, help="The new method (registered, or from --plugins).")
@click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first.")
@click.option("--bundle", default="reference", show_default=True, help="The reference bundle of the baselines.")
@click.option("--results-dir", default="results-compare", show_default=True,
              help="Where the bundle is unpacked and the new method's runs go.")
@click.option("--tasks", default=None, metavar="A,B", help="Only these twins (default: every twin of the bundle).")
@click.option("--seeds", default=None, metavar="S1,S2",
              help="The new method's seeds on every twin (default: the seeds every baseline row of three or more seeds "
                   "shares on each twin: the design's first look).")
@click.option("--teachers", default=None, metavar="U1,U2",
              help="Only the baselines' teachers with these upstream seeds (default: every teacher whose upstream "
                   "stages the bundle ships): a verdict for those teachers, at a fraction of the cost.")
@click.option("--accept-stale-bundle", is_flag=True,
              help="Compare against a bundle whose stage keys differ from this code's plan: the new method trains on "
                   "its shipped upstream stages all the same, and the report says which commit the baselines are from.")
@click.option("--dry-run", is_flag=True, help="Unpack the bundle and list what each cell would build or reuse; "
                                              "train nothing.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Cells at once, each in its own worker process.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads per cell (default: the cores shared among the workers). " + THREADS_NOTE)
@click.option("--out", "out_dir", default=None, help="The report's folder (default: RESULTS_DIR/report).")
@click.option("--bootstrap-samples", type=click.IntRange(min=10), default=1000, show_default=True)
@until_decided_options
def compare_cmd(method, plugins, bundle, results_dir, tasks, seeds, teachers, accept_stale_bundle, dry_run, workers,
                threads, out_dir, bootstrap_samples, until_decided, max_seeds, seeds_per_round, max_minutes, margin) -> None:
    """A new method against the shipped baselines: unpack the reference bundle, run only the new method's cells on
    its upstream stages (teacher, pseudo-labels, pre-distilled student, …), and render the report with the new
    method among the baselines.

    With --until-decided (comparisons of the new method with baselines, e.g. mine>seqkd,mine~js), the new method's
    cells at the compare seeds are the first look; each round then adds seeds to both rows of every undecided
    comparison (task × method × teacher), up to --max-seeds. A baseline's cells at seeds the bundle lacks are
    trained here, on the shipped upstream stages: that costs baseline training, not only the new method's."""
    from pathlib import Path

    from .grid import format_plan, plan_grid, run_grid
    from .grid.executors import check_local_options
    from .grid.reference import check_tasks, compare_cells, rekey_upstream, stale_message, stale_runs, unshipped_builds
    from .grid.spec import parse_list
    from .registry import METHODS
    from .store.bundle import baseline_commit, import_bundle, read_manifest, record_aliases

    check_local_options("local", workers, threads)
    _load_plugins(plugins)
    METHODS.get(method)   # unknown → one line with the known names
    chosen = tuple(parse_list(tasks)) if tasks else ()
    try:
        seed_list = tuple(int(s) for s in parse_list(seeds)) if seeds else None
    except ValueError:
        raise HarnessError(f"--seeds {seeds}: give integers, e.g. --seeds 42,43,44") from None
    teacher_list = _teacher_seeds(teachers)
    if until_decided is None:   # its options alone: one line before the bundle is read
        _until_decided_options((), (), (), None, max_seeds, seeds_per_round, max_minutes, margin)
    manifest = read_manifest(bundle)
    check_tasks(manifest, chosen)
    sequential = None
    if until_decided is not None:
        sequential = _compare_until_decided(manifest, method, chosen, seed_list, until_decided, max_seeds,
                                            seeds_per_round, max_minutes, margin)
    stale = stale_runs(manifest, chosen)
    if stale and sequential is not None:
        raise HarnessError(stale_message(bundle, manifest, stale) + "; --until-decided would train the baselines' "
                           "added seeds with this code's stages beside shipped runs made by other code, so it needs "
                           "a bundle made by this code (or drop --until-decided and pass --accept-stale-bundle to "
                           "compare at fixed seeds)")
    if stale and not accept_stale_bundle:
        raise HarnessError(stale_message(bundle, manifest, stale) + ", or pass --accept-stale-bundle to compare "
                                                                    "against it as it is")
    check_writable_folder(results_dir, "--results-dir")
    if out_dir is not None:   # before the bundle is unpacked and the cells train, not after (the default is in
        check_writable_folder(out_dir, "--out")   # --results-dir, checked above)
    plugin_paths = tuple(str(Path(p).resolve()) for p in plugins)
    cells = compare_cells(manifest, method, results_dir, seeds=seed_list, tasks=chosen, plugins=plugin_paths,
                          teachers=teacher_list)
    grown = None
    if sequential is not None:   # (every cell resolved before the bundle is unpacked: a bad one is one line first)
        from .grid.reference import grown_cells

        comparisons, design, order = sequential
        involved = list(dict.fromkeys(m for c in comparisons for m in (c.a, c.b)))
        grown = grown_cells(manifest, involved, results_dir, order, tasks=chosen, plugins=plugin_paths,
                            teachers=teacher_list)
    done = import_bundle(bundle, results_dir, provenance={"accepted_stale": bool(stale)})
    click.echo(f"bundle {bundle} (commit {baseline_commit(manifest)}): {done.summary()} → {results_dir}")
    if stale:
        click.echo(f"warning: {len(stale)} baseline runs were made by other stage code (e.g. {stale[0].describe()}); "
                   f"the new method trains on the shipped upstream stages all the same", err=True)
        record_aliases(results_dir, rekey_upstream(manifest, cells, results_dir))
    plans = plan_grid(cells)
    extra = unshipped_builds(plans, method)
    if extra:
        click.echo(f"note: not in the bundle, built here: {'; '.join(extra)}", err=True)
    profile = "+".join(sorted({c.profile for c in cells}))
    name = f"compare-{method}"
    if dry_run:
        click.echo(format_plan(plans, name, profile))
    reports = []

    def run(todo):
        reports.append(run_grid(todo, name, profile, workers=workers, threads=threads, echo=click.echo))
        click.echo(reports[-1].summary())
        return reports[-1]

    if sequential is not None:
        from .grid.until_decided import run_until_decided

        comparisons, design, order = sequential
        shipped = frozenset(r["run_id"] for t in manifest["twins"] for r in t["runs"])
        run_until_decided(cells, grown, comparisons, design, order, name, profile, run, max_minutes, click.echo,
                          dry_run, shipped=shipped)
    elif not dry_run:
        run(cells)
    if dry_run:
        return
    from .reporting.build import build_report, default_out
    from .reporting.render import to_markdown

    out_dir = out_dir or str(default_out(results_dir))
    page = build_report(results_dir, out_dir, n_samples=bootstrap_samples, focus=method)
    for table in (t for name, t in page.tables.items() if name.startswith(f"versus_{method}_")):
        click.echo(to_markdown(table))
    click.echo(f"{len(page.tables)} tables, {len(page.figures)} figures → {page.out}/report.html")
    if any(r.failed for r in reports):
        sys.exit(1)


def _compare_until_decided(manifest: dict, method: str, tasks: tuple[str, ...], seeds: tuple[int, ...] | None,
                           until_decided, max_seeds, seeds_per_round, max_minutes, margin):
    """``harness compare --until-decided``'s comparisons, design and seed order, checked before any work: the first
    look is the new method's seeds (one list on every twin), its comparisons name the new method and a baseline
    the bundle ships."""
    from .grid.reference import baseline_methods, seeds_for
    from .store.bundle import compared_twins

    twins = [t for t in compared_twins(manifest) if not tasks or t["task"] in tasks]
    starts = {tuple(seeds_for(t, seeds)) for t in twins}
    if len(starts) > 1:
        each = "; ".join(f"{t['task']}-{t['profile']}: {', '.join(map(str, seeds_for(t, seeds)))}" for t in twins)
        raise HarnessError(f"--until-decided: the twins' baselines have different seeds ({each}), and a sequential "
                           f"design has one seed order; give --seeds, or --tasks with twins of the same seeds")
    methods = list(dict.fromkeys([method, *baseline_methods(manifest, tasks)]))
    sequential = _until_decided_options(list(starts.pop()), methods, sorted({t["task"] for t in twins}),
                                        until_decided, max_seeds, seeds_per_round, max_minutes, margin)
    for comparison in sequential[0]:
        if method not in (comparison.a, comparison.b):
            raise HarnessError(f"--until-decided {comparison}: compares two baselines; harness compare decides "
                               f"comparisons of the new method {method} with a baseline (e.g. {method}>"
                               f"{comparison.b}), and the bundle's baselines are not re-run")
    return sequential


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
        for line in _parameter_lines(cls):
            click.echo(f"  {'':<22}   {line}")
    click.echo("profiles:")
    for name in PROFILES:
        click.echo(f"  {name}")


@cli.command("bench")
@click.option("--preset", "presets", multiple=True, metavar="NAME",
              help="dart-like | xsum-like | paper-gpu | paper-dart | paper-xsum | paper-wmt | paper-dialogue "
                   "(repeatable; default: dart-like and xsum-like). paper-<task>: the paper's model shapes with "
                   "random weights at the paper profile's sizes (small ones on CPU).")
@click.option("--method", "methods", multiple=True, metavar="NAME",
              help="Repeatable; default: the preset's list (paper-gpu: kl, rkl, js, tvd), else every method.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["fast", "reference", "bare"]),
              help="Repeatable; default: the preset's (paper-<task>: fast), else all three.")
@click.option("--repeats", "--steps", "repeats", type=click.IntRange(min=1), default=None,
              help="Timed steps per mode (median; default: the preset's: 5, 3, or 1 for paper-<task> on CPU).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Examples per step (default: the preset's; the same as --set batch_size=N).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a preset field, e.g. --set batch_size=16 --set teacher.d_model=256.")
@click.option("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the preset's).")
@click.option("--no-table4", is_flag=True, help="Skip the online-vs-offline teacher prefixes of JS and TVD.")
@click.option("--results-dir", default="results", show_default=True, help="Writes <results-dir>/bench/<time>.parquet.")
@click.option("--plugins", multiple=True, metavar="FILE.py", help="Import a local file of plugins first.")
@click.option("--dry-run", is_flag=True, help="Print the resolved preset configurations; measure nothing.")
@click.option("--cell", "cell_task", default=None, metavar="TASK",
              help="Instead of steps: build whole cells of TASK (each --method, default tvd) from a fresh cache "
                   "with the teacher-output store off and on, and print each stage's build seconds.")
@click.option("--profile", default="cpu", show_default=True, help="With --cell: the cells' profile.")
@click.option("--store-k", type=click.IntRange(min=1), default=None,
              help="With --cell: the store's k when on (default: the whole vocabulary, exact).")
def bench_cmd(presets, methods, modes, repeats, batch_size, threads, sets, device, no_table4, results_dir, plugins,
              dry_run, cell_task, profile, store_k) -> None:
    """Step time, tokens/s and peak memory of fast vs reference (paper-code) mode vs the bare floor;
    with --cell, the stage build seconds of whole cells."""
    import json

    from .bench import describe, format_tables, method_names, mode_names, resolve_bench_config, run_bench, write_results
    from .config import parse_sets

    _load_plugins(plugins)
    pairs = parse_sets(sets)
    if cell_task is not None:
        from pathlib import Path

        from .bench.cell import bench_cells, format_cells
        from .config import resolve_config, to_dict

        set_threads(threads)
        if device is not None:
            pairs.append(("device", device))
        configs = [resolve_config(cell_task, m, profile, None, pairs) for m in (methods or ("tvd",))]
        if dry_run:
            click.echo(json.dumps([to_dict(c) for c in configs], indent=2))
            return
        check_writable_folder(results_dir, "--results-dir")
        rows = bench_cells(configs, store_k, scratch=Path(results_dir) / "bench",
                           progress=lambda line: click.echo(line, err=True))
        path = write_results(rows, results_dir)
        click.echo(format_cells(rows))
        click.echo(f"results: {path}")
        return
    for key, value in (("repeats", repeats), ("batch_size", batch_size), ("threads", threads), ("device", device)):
        if value is not None:
            pairs.append((key, str(value)))
    configs = [resolve_bench_config(p, pairs) for p in (presets or ("dart-like", "xsum-like"))]
    # unknown names and impossible modes fail before any measuring
    plan = [(cfg, method_names(cfg, methods), mode_names(cfg, modes)) for cfg in configs]
    if dry_run:
        click.echo(json.dumps([{**describe(cfg), "methods": names, "modes": list(chosen)}
                               for cfg, names, chosen in plan], indent=2))
        return
    rows = []
    for cfg, names, chosen in plan:
        rows += run_bench(cfg, names, chosen, table4=cfg.table4 and not no_table4,
                          progress=lambda line: click.echo(line, err=True))
    path = write_results(rows, results_dir)
    click.echo(format_tables(rows))
    click.echo(f"results: {path}")


def _prefix_sources(cls) -> str:
    try:  # with default parameters; a plugin whose weights need a task says so instead
        return ", ".join(cls().prefix_weights())
    except Exception:
        return "per task"


def _parameter_lines(cls) -> list[str]:
    """``method.NAME=DEFAULT  (range)  help`` for each of a method's parameters."""
    import dataclasses

    from .config import range_text

    lines = []
    for f in dataclasses.fields(cls.Params):
        default = f.default if f.default is not dataclasses.MISSING else "…"
        valid = range_text(dict(f.metadata))
        lines.append(f"method.{f.name}={default}" + (f"  ({valid})" if valid else "")
                     + (f"  {f.metadata['help']}" if f.metadata.get("help") else ""))
        for profiles, values in _task_defaults(cls, f.name, default).items():
            lines.append(f"method.{f.name} by task ({profiles}; a run takes its task's): "
                         + ", ".join(f"{task} {value}" for task, value in values.items()))
    return lines


def _task_defaults(cls, name: str, default) -> dict[str, dict]:
    """profiles → {task: its default of the parameter ``name``} where tasks set it away from ``default`` (a run
    takes the task's: `harness config` shows it); profiles that agree are named together."""
    from .config import PROFILES
    from .registry import TASKS

    by_profile: dict[str, dict] = {}
    for profile in PROFILES:
        values = {}
        for task in TASKS.names():
            try:
                value = cls.task_defaults(TASKS.get(task), profile).get(name, default)
            except Exception:   # a task's broken declaration fails where it is used, in one line
                continue
            if value != default:
                values[task] = value
        by_profile[profile] = values
    grouped: dict[str, dict] = {}
    for profile, values in by_profile.items():
        same = next((p for p, v in grouped.items() if v == values), None)
        if same is not None:
            grouped[f"{same}, {profile}"] = grouped.pop(same)
        elif values:
            grouped[profile] = values
    every = ", ".join(PROFILES)
    return {"every profile" if p == every else f"profile {p}" if "," not in p else f"profiles {p}": v
            for p, v in grouped.items() if v}


def _first_line(cls) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


@cli.command("config")
@cell_options
@click.option("--format", "output_format", type=click.Choice(["json", "toml"]), default="json", show_default=True)
def config_cmd(task, method, profile, seed, sets, plugins, output_format) -> None:
    """Print the resolved configuration, method parameters included: check a recipe before running it."""
    import json

    from .config import parse_sets, resolve_config, to_dict, unused_fields
    from .tomltext import dumps

    _load_plugins(plugins)
    cfg = resolve_config(task, method, profile, seed, parse_sets(sets))
    resolved, unused = to_dict(cfg), unused_fields(cfg)
    if output_format == "toml":   # each unused key marked where it stands
        click.echo(dumps(resolved, unused), nl=False)
        return
    click.echo(json.dumps(resolved, indent=2))
    reasons: dict[str, list[str]] = {}
    for key, why in unused.items():
        reasons.setdefault(why, []).append(key)
    for why, keys in reasons.items():   # (on stderr: stdout stays the config, for tools to read)
        click.echo(f"unused: {', '.join(keys)} ({why})", err=True)


def main() -> None:
    try:
        tune_allocator()   # a process setting: the CLI's to make, not a library import's
        if not {"-h", "--help", "--version"} & set(sys.argv[1:]) and len(sys.argv) > 1:
            check_libraries()   # before any work; a command's help needs none of them
        cli.main(standalone_mode=False)
    except HarnessError as err:
        click.echo(f"harness: error: {err}", err=True)
        sys.exit(err.exit_code)
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
    except Exception as err:
        from . import distributed

        if distributed.world_size() > 1 and distributed.is_peer_failure(err):
            sys.exit(1)   # another rank died: the launcher says which, in one line
        raise


if __name__ == "__main__":
    main()
