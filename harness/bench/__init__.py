"""``harness bench``: what the shared step engine saves, measured side by side.

For each method and each preset (:mod:`.presets`: a task-shaped configuration of
random-weight models and synthetic token batches, :mod:`.synthetic`, so no training is
needed), one training step is timed (:mod:`.measure`) in the three execution modes of
:mod:`harness.step`:

* ``fast``: :func:`harness.step.fast.method_loss`, each piece of work once per batch;
* ``reference``: :func:`harness.step.reference.reference_loss`, the paper code's structure;
* ``bare``: :func:`harness.step.bare.bare_loss`, the floor — only the model calls the
  method cannot avoid, as straight-line ``transformers`` calls.

The paper's Table 4 is re-measured for JS and TVD (:mod:`.table4`): offline teacher
prefixes (the default) against teacher prefixes sampled each step ("online").

Results go to ``results/bench/<timestamp>.parquet`` (written atomically through
:mod:`harness.store.io`) and are printed (:func:`format_tables`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from ..errors import HarnessError
from ..lm import DECODER_ONLY_FAMILIES
from ..step import MODES
from .measure import measure, peak_memory_mib
from .presets import (AUTOCAST, PAPER_TASKS, PRESETS, BenchConfig, describe, make_method, method_names,
                      resolve_bench_config)
from .sizes import bench_memory
from .synthetic import Setup, SyntheticVocab, make_setup
from .table4 import OnlineTeacher, format_table4, variants

__all__ = ["AUTOCAST", "MODES", "PAPER_TASKS", "PRESETS", "BenchConfig", "OnlineTeacher", "Setup", "SyntheticVocab",
           "bench_memory", "describe", "format_tables", "make_method", "make_setup", "method_names", "mode_names",
           "peak_memory_mib", "resolve_bench_config", "run_bench", "write_results"]


def mode_names(cfg: BenchConfig, given: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
    """``given``, else the preset's modes, else all three; unknown modes, and ``bare`` on a decoder-only model
    (the floor is written for encoder-decoders), fail here."""
    modes = tuple(given) or tuple(m.strip() for m in cfg.modes.split(",") if m.strip()) or MODES
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise HarnessError(f"unknown bench mode {unknown[0]!r}; known: {', '.join(MODES)}")
    if "bare" in modes and cfg.teacher.family in DECODER_ONLY_FAMILIES:
        raise HarnessError(f"mode bare is written for encoder-decoder models, not teacher.family="
                           f"{cfg.teacher.family!r}: choose --mode fast or --mode reference")
    return modes


def run_bench(cfg: BenchConfig, methods: list[str], modes: tuple[str, ...] = MODES, table4: bool = True,
              progress: Callable[[str], None] = lambda _: None, setup: Setup | None = None) -> list[dict]:
    """Measure every method of ``methods`` on ``cfg``; with ``table4``, JS and TVD online as well.

    ``setup``: models and batch already built for ``cfg`` (default: built here from ``cfg``, after checking
    that they and the largest step fit in memory).
    """
    modes = mode_names(cfg, modes)
    objects = {name: make_method(name, cfg.task) for name in methods}
    try:
        return _run_bench(cfg, objects, modes, table4, progress, setup)
    except (RuntimeError, MemoryError) as err:   # past the estimate: one line, not the allocator's traceback
        if not (isinstance(err, (torch.OutOfMemoryError, MemoryError)) or "can't allocate memory" in str(err)):
            raise
        raise HarnessError(f"bench preset {cfg.preset!r} ran out of memory although its estimate fitted "
                           f"({type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else '-'}); lower "
                           f"batch_size, source_tokens, target_tokens or the model sizes with --set") from None


def _run_bench(cfg: BenchConfig, objects: dict, modes: tuple[str, ...], table4: bool,
               progress: Callable[[str], None], setup: Setup | None) -> list[dict]:
    setup = setup or make_setup(cfg, list(objects.values()))
    context = {
        "device": str(setup.device),
        "device_name": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "batch_size": cfg.batch_size,
        "source_tokens": int(setup.batch.source_mask.sum(1).float().mean()),
        "target_tokens": cfg.target_tokens, "sampling_beams": cfg.sampling.num_beams, "autocast": cfg.autocast,
        "teacher_params": sum(p.numel() for p in setup.teacher.model.parameters()),
        "student_params": sum(p.numel() for p in setup.student.model.parameters()),
        "torch": torch.__version__, "transformers": __import__("transformers").__version__,
    }
    rows = []
    for name, method in objects.items():
        estimate = bench_memory(cfg, method, setup.device.type)
        rows += [{**row, "estimated_step_mib": estimate.step / 2 ** 20, "weights_mib": estimate.weights / 2 ** 20}
                 for row in measure(setup, name, variants(name, method, modes, table4), progress)]
    return [{**row, **context} for row in rows]


def write_results(rows: list[dict], results_dir: str | Path, stamp: str | None = None) -> Path:
    """``<results_dir>/bench/<timestamp>.parquet``, written atomically (a full disk: the one-line DiskFullError)."""
    import pandas as pd

    from ..store.io import atomic_file

    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    final = Path(results_dir) / "bench" / f"{stamp}.parquet"
    table = pd.DataFrame([{**row, "timestamp": stamp} for row in rows])
    with atomic_file(final) as tmp:
        table.to_parquet(tmp, index=False)
    return final


def _rate(value: float) -> str:
    """Tokens per second: whole above 100, else with a decimal (a paper-size model on CPU makes a few)."""
    return f"{value:.0f}" if value >= 100 else f"{value:.2g}" if value < 1 else f"{value:.1f}"


def format_tables(rows: list[dict]) -> str:
    """The step-time table (fast vs reference vs floor) and the Table 4 comparison, as text."""
    lines = []
    by_key: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        if r["variant"] == "default":
            by_key.setdefault((r["preset"], r["method"]), {})[r["mode"]] = r
    header = (f"{'preset':<14} {'method':<11} {'fast ms':>8} {'ref ms':>8} {'bare ms':>8} {'fast/ref':>9} "
              f"{'fast/bare':>9} {'fast tok/s':>10} {'fast MiB':>9} {'est MiB':>8} {'ref MiB':>8} {'|Δloss|':>8}")
    lines += [header, "-" * len(header)]
    for (preset, method), modes in by_key.items():
        def cell(mode, key, scale=1.0, fmt="{:.0f}"):
            return fmt.format(modes[mode][key] * scale) if mode in modes else "-"
        fast = modes.get("fast")
        vs_ref = f"{fast['speedup_vs_reference']:.2f}×" if fast and "reference" in modes else "-"
        vs_bare = f"{fast['over_floor']:.2f}×" if fast and "bare" in modes else "-"
        lines.append(
            f"{preset:<14} {method:<11} {cell('fast', 'step_s', 1000):>8} {cell('reference', 'step_s', 1000):>8} "
            f"{cell('bare', 'step_s', 1000):>8} {vs_ref:>9} {vs_bare:>9} "
            f"{_rate(modes['fast']['tokens_per_s']) if fast else '-':>10} {cell('fast', 'peak_mem_mib', 1, '{:.1f}'):>9} "
            f"{next(iter(modes.values())).get('estimated_step_mib', float('nan')):>8.1f} "
            f"{cell('reference', 'peak_mem_mib', 1, '{:.1f}'):>8} "
            f"{cell('reference', 'max_loss_diff_vs_fast', 1, '{:.1e}'):>8}")
    lines += format_table4(rows)
    if rows:
        r = rows[0]
        lines += ["", f"device {r['device_name']} ({r['threads']} threads); step = loss + backward; times: median of "
                      f"{r['repeats']} repeats; ratios: median of per-repeat ratios, arms interleaved; "
                      f"memory: {r['memory_measure']}, above the weights; est: harness.grid.memory's estimate of "
                      f"the same (gradients, activations, logits)"]
        weights = {(row["preset"], row.get("weights_mib")) for row in rows if row.get("weights_mib") is not None}
        for preset, mib in weights:
            row = next(x for x in rows if x["preset"] == preset)
            lines.append(f"{preset}: teacher {row['teacher_params'] / 1e6:,.0f}M and student "
                         f"{row['student_params'] / 1e6:,.0f}M parameters, {mib:,.0f} MiB of weights (fp32); batch "
                         f"{row['batch_size']}, sources of {row['source_tokens']} tokens on average")
    return "\n".join(lines)
