"""``harness report``: paper-style tables, plots and one HTML page, computed from the results store alone.

Every number comes from the parquet files of ``results/runs/<run_id>/`` (metrics, examples,
curves, compute), through :mod:`harness.store.read`; a store describes itself, so no plugin
registry is consulted. Metric directions are metrics.parquet's ``higher_is_better``; the other
things read are each run's manifest: its config, for the parameter values a run left at their
defaults (:func:`harness.store.read.load_metrics` fills those columns), its task's description
(metrics, selection metric) and its method's, with the parameters it ran with (Table 4 pairs a
method that trains on the teacher's offline outputs with its online variant).

Layout of the output folder (written whole and put in place of the old one; a ``README.md`` there is kept):

    report.html              every table and figure (the figures linked from figures/)
    report.md                every table in Markdown, with links to the figures
    summary.csv              every row × metric: n, mean, 95% CI, the per-seed values
    tables/<name>.{md,tex,csv}
    figures/<name>.{png,svg}
    report.png               a screenshot of report.html (``--screenshot``; needs Chromium)

Modules: ``load`` (the store as a report sees it), ``summary`` (rows aggregated over seeds), ``ranking`` (the one
ordering of rows: bold, ranks, orders written out, Kendall τ), ``tables`` (the paper's tables), ``noise`` (one
model of seed and test-input noise behind every mark, interval and verdict), ``stability`` (each row's seeds
recomputed on shared bootstrap draws of the test inputs, for that model; rank stability and τ's interval),
``store_table`` (the teacher-output
store: bytes per stored token and, per k, the paired-bootstrap difference from the exact teacher), ``compare``
(the paper's published numbers, :mod:`harness.paper.published`, beside ours), ``calibration`` (each twin's
teacher − MLE gap, pre-distilled token TVD and TeacherDist against the paper's, with the bounds they should meet), ``findings`` (the paper's claims,
:mod:`harness.paper.claims`, re-tested: a verdict per claim and task), ``teachers`` (runs grouped by upstream seed: a
verdict per teacher and one over teachers), ``variance`` (where the variance comes from: upstream seed, method seed,
decoding, test inputs; per model and per Table 2 comparison), ``plots``, ``render`` (Markdown, LaTeX,
CSV), ``html`` (the page, its contents and anchors), ``prose`` (a Markdown file's blocks rendered from the tables,
its other numbers checked against them), ``build`` (:func:`~harness.reporting.build.build_report`) and ``run_table`` (what ``harness
run`` prints). The package itself imports nothing, so ``harness run``
does not load the plotting libraries.
"""
