"""The reference bundle: a store's upstream stages and baseline runs, packed to ship with the repository.

A results store (``RESULTS/cache/<stage>/<key>/``, ``RESULTS/runs/<run>/``) is packed per *twin* (a task at a
profile) into xz-compressed tar archives (one per stage folder, one of the run records) of

* its **upstream stages**, the ones a new method's cell reuses: tokenizer, teacher, pseudo-labels, the
  teacher-output store, the shared pre-distilled student, and the evaluations of the teacher and of that student
  (a student's coverage risk reads the teacher's evaluation; a cell evaluates the pre-distilled student as well);
* every **run record** (metrics, examples, curves, compute, manifest) — never a KD student's weights: a run
  folder holds none, and the ``method`` stage of a run is not an upstream stage (the pre-distill run at the
  upstream seed excepted: its student *is* the shared one).

The design records of sequential grids (``grids/*.until-decided.json``) that place any of the runs go into
``designs.tar.xz``: the report reads them to judge the rows that ``--until-decided`` grew. The store's sentence
statistics (``cache/statistics``, kept by :mod:`harness.reporting.stats`: sacreBLEU's per-sentence statistics,
TER's edit distances above all, each file named by the sha256 of what made it) go into ``statistics.tar.xz``: a
report of the imported bundle reads them instead of computing them (≈ 7 minutes of one core on the evidence
store); they change no number, and a file another sacreBLEU version would compute is never read (its version is
part of what the name hashes).

A run's ``manifest.json`` is packed without the paths of the machine that wrote it (:func:`without_paths`); every
other file as it is. Each archive is cut into parts of at most :data:`PART_BYTES`, and the bundle is refused over
:data:`BUNDLE_BYTES` in all. ``bundle.json`` says what is inside: the format version, the commit of the code that
wrote the runs, per twin its stages (label → key) and its runs (config parameters and stage keys), and the sha256
and size of every file and of every part. Archives are written deterministically (sorted members, no times or
owners), so the same store gives the same bytes.

:func:`import_bundle` unpacks a bundle into a results folder: every part and every file is checked against
``bundle.json`` before anything is put in place (a corrupted file is one line naming it), then each stage and
run folder is moved in with one rename, as the store writes them. Whether the bundle's stage keys are those
this code plans is :mod:`harness.grid.reference`'s question (it plans cells; this module only reads files).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessError
from .io import STAGE_RECORD, atomic_dir, checksums, sha256_file, write_json
from .labels import EVALUATION, METHOD, PREDISTILL, PSEUDO_LABELS, TEACHER, TEACHER_OUTPUTS, TOKENIZER
from .runs import RUNS, TMP, verify_run
from .statistics import STATISTICS, is_statistics_file, statistics_files

FORMAT = "harness-reference-bundle"
VERSION = 4   # 2: released-text twins of records only, design records (grids/); 3: an archive per stage folder
#               and one of a twin's runs; 4: the sentence statistics (cache/statistics). Older bundles still read (the import reads the archives bundle.json lists).
MANIFEST = "bundle.json"
#: What the import leaves in the results folder: where its baselines came from (the report reads it).
PROVENANCE = "reference.json"
MB = 1_000_000
PART_BYTES = 20 * MB         # a file of the repository: well under the hosts' per-file limits
BUNDLE_BYTES = 80 * MB       # the bundle in all
CACHE = "cache"
#: Where a sequential grid's design records live in a store (``harness.reporting.sequential``): the report reads
#: them to judge the rows the rounds grew, so a bundle of such runs ships them.
GRIDS = "grids"
DESIGN_SUFFIX = ".until-decided.json"
DESIGNS = "designs"   # the archive of the design records: ``designs.tar.xz``
#: The labels of a run's stages that a new method's cell of the same twin reuses (``teacher_outputs/<source>``
#: by prefix).
UPSTREAM_LABELS = (TOKENIZER, TEACHER, PSEUDO_LABELS, PREDISTILL, f"{EVALUATION}/{TEACHER}",
                   f"{EVALUATION}/{PREDISTILL}")
BUNDLE_FILES = (MANIFEST, "README.md")   # besides the archives' parts: what a bundle folder may hold
#: The k of the teacher-output stores a bundle ships (a run at another k ships its records only). From the
#: k-sweep (``harness grid store_ksweep``; the report's "Teacher-output store" table, DART, one seed): at k = 32
#: a stored token takes 198 bytes against 12,006 exact (61× less), and no BLEU difference of JS, TVD, AKL or
#: word-level KD from the exact store or the live teacher was detected (every interval includes 0: one seed, so
#: not evidence of equivalence); the exact store alone (≈ 1.1 GB on DART) would not fit the bundle. A new method
#: reads it with ``--set teacher_outputs_k=32``; its difference from the baselines (live teacher, k = 0) then
#: holds the store's approximation too.
SHIPPED_STORE_K = 32
STORE_K = "teacher_outputs_k"


def is_upstream(label: str, manifest: dict, store_k: int | None = None) -> bool:
    """Whether the stage ``label`` of the run ``manifest`` is one a new method's cell reuses.

    The pre-distill run trains the pre-distilled student itself (its ``method`` stage is its ``predistill``
    stage): that student and its evaluation are the shared ones only at the upstream seed. ``store_k``: a
    teacher-output store only of a run at this k (any k when None)."""
    if label.startswith(f"{TEACHER_OUTPUTS}/"):
        return store_k is None or manifest.get("parameters", {}).get(STORE_K) == store_k
    if label not in UPSTREAM_LABELS:
        return False
    stages = manifest.get("stages", {})
    own = stages.get(METHOD, {}).get("key")
    if own is not None and own == stages.get(PREDISTILL, {}).get("key") and label in (
            PREDISTILL, f"{EVALUATION}/{PREDISTILL}"):
        seeds = manifest.get("seeds", {})
        return seeds.get("method") == seeds.get("upstream")
    return True


UPSTREAM_SEED = "upstream_seed"


def teacher_seed(parameters: dict, seed: int) -> int:
    """The seed a run's teacher was made from, from its parameters (its config values away from the defaults): its
    upstream seed, the default's when they leave it out, or its method seed where the upstream seed is None."""
    from ..config import RunConfig

    upstream = parameters.get(UPSTREAM_SEED, RunConfig().upstream_seed)
    return seed if upstream is None else upstream


EMBEDDED = "embedded"


def run_source(parameters: dict) -> str:
    """Where a run's data came from (``data.source``; its parameters leave the default, the embedded twin, out)."""
    return str(parameters.get("data.source", EMBEDDED))


def twin_name(task: str, profile: str, source: str = EMBEDDED) -> str:
    return f"{task}-{profile}" + ("" if source == EMBEDDED else f"-{source}")


def compared_twins(manifest: dict) -> list[dict]:
    """The twins a new method is compared on: those of embedded data. A twin of released text (``data.source``
    ``local``: the paper's rows on real DART and dialogue files) ships its runs' records for the report only; its
    stage keys hold the digests of files the repository does not ship."""
    return [t for t in manifest["twins"] if t.get("source", EMBEDDED) == EMBEDDED]


# ---------------------------------------------------------------- building

@dataclass
class Twin:
    """What a bundle holds of one task at one profile."""

    task: str
    profile: str
    source: str = EMBEDDED                                               # the runs' data.source
    stages: dict[tuple[str, str], str] = field(default_factory=dict)   # (stage, key) → a label it has
    runs: list[dict] = field(default_factory=list)                      # per run: what bundle.json says of it
    teachers: set[int] = field(default_factory=set)   # the teacher seeds whose upstream stages are packed

    @property
    def name(self) -> str:
        return twin_name(self.task, self.profile, self.source)

    def folders(self) -> list[str]:
        """Its stage and run folders, relative to the results folder, in archive order."""
        return [folder for _, folders in self.archives() for folder in folders]

    def archives(self) -> list[tuple[str, list[str]]]:
        """Its archives' names and folders: one per upstream stage (``<twin>.<stage>-<key>.tar.xz``; none for a twin
        of records only), then the run records (``<twin>.runs.tar.xz``). A stage folder never changes once built
        (its key is its content's address), so its archive keeps its bytes however the store grows: a bundle packed
        again after more runs, or with more stages (another depth's pre-distilled student, a teacher-output store),
        changes the records' archive and adds the new stages' — a repository that commits the bundle as the
        evidence grid goes on stores each teacher's weights once."""
        stages = [(f"{self.name}.{stage}-{key}.tar.xz", [f"{CACHE}/{stage}/{key}"])
                  for stage, key in sorted(self.stages)]
        runs = [f"{RUNS}/{run['run_id']}" for run in sorted(self.runs, key=lambda r: r["run_id"])]
        return stages + [(f"{self.name}.runs.tar.xz", runs)]

    def settings(self) -> dict:
        """The config values (dotted keys) every run of the twin set away from its defaults, method parameters
        left out: what a new method's cell must set too for its upstream stages to be these (the store's k, …)."""
        common = None
        for run in self.runs:
            items = {(k, json.dumps(v, sort_keys=True)) for k, v in run["parameters"].items()
                     if not k.startswith("method.")}
            common = items if common is None else common & items
        return {k: json.loads(v) for k, v in sorted(common or ())}

    def describe(self) -> dict:
        return {"task": self.task, "profile": self.profile, "source": self.source,
                "archives": [name for name, _ in self.archives()],
                "stages": [{"label": label, "stage": stage, "key": key}
                           for (stage, key), label in sorted(self.stages.items())],
                "seeds": sorted({run["seed"] for run in self.runs}),
                "teachers": sorted(self.teachers),
                "settings": self.settings(),
                "runs": sorted(self.runs, key=lambda r: r["run_id"])}


def collect(results_dir: str | Path, tasks: tuple[str, ...] = (), profiles: tuple[str, ...] = (),
            teachers: tuple[int, ...] = (), store_k: int | None = None) -> list[Twin]:
    """The twins of a store: each complete, intact run (of ``tasks`` and ``profiles``, all when empty) and the
    upstream stages it used, which must be in the store's cache, intact — those of the runs at the teacher seeds
    ``teachers`` only, when given, and the teacher-output stores of the runs at ``store_k`` only, when given (every
    run's records all the same). Runs of released text (``data.source`` not
    embedded) make twins of their own, of records only: a new method is compared on the embedded twins
    (:func:`compared_twins`), and their stages were made from files the repository does not ship."""
    root = Path(results_dir)
    folders = sorted(p for p in (root / RUNS).glob("*") if (p / "manifest.json").is_file()
                     and not p.name.startswith(".")) if (root / RUNS).is_dir() else []
    twins: dict[tuple[str, str], Twin] = {}
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text())
        task, profile = manifest["config"]["task"], manifest["config"]["profile"]
        if (tasks and task not in tasks) or (profiles and profile not in profiles):
            continue
        problem = verify_run(folder)
        if problem is not None:
            raise HarnessError(f"run {folder}: {problem}; run its cell again before bundling the store")
        parameters = manifest.get("parameters", {})
        source = run_source(parameters)
        twin = twins.setdefault((task, profile, source), Twin(task, profile, source))
        teacher = teacher_seed(parameters, manifest["config"]["seed"])
        if source == EMBEDDED and (not teachers or teacher in teachers):
            twin.teachers.add(teacher)
            for label, entry in manifest["stages"].items():
                if is_upstream(label, manifest, store_k):
                    twin.stages.setdefault((entry["stage"], entry["key"]), label)
        twin.runs.append({"run_id": manifest["run_id"], "method": manifest["config"]["method"],
                          "seed": manifest["config"]["seed"], "parameters": manifest.get("parameters", {}),
                          "commit": (manifest.get("git") or {}).get("commit"),
                          "stages": {label: entry["key"] for label, entry in manifest["stages"].items()}})
    if not twins:
        scope = f" of tasks {', '.join(tasks)}" if tasks else ""
        raise HarnessError(f"--results-dir {root}: no complete run{scope} to bundle; `harness grid` writes them")
    lacking = [t.name for t in twins.values() if not t.teachers and t.source == EMBEDDED]
    if lacking:
        raise HarnessError(f"--teachers {','.join(map(str, teachers))}: no run of {', '.join(lacking)} was made at "
                           f"these teacher seeds, so none of its upstream stages would ship; choose its teachers "
                           f"(or leave it out with --tasks)")
    for twin in twins.values():
        for stage, key in twin.stages:
            path = root / CACHE / stage / key
            if not (path / STAGE_RECORD).is_file():
                raise HarnessError(f"{path}: the {stage} stage that runs of {twin.name} used is not in the store's "
                                   f"cache; run their cells again (`harness grid`) to rebuild it, then bundle")
            if checksums(path) != json.loads((path / STAGE_RECORD).read_text()).get("checksums"):
                raise HarnessError(f"{path}: does not match the checksums recorded when it was built (truncated or "
                                   f"changed); run the cells of {twin.name} again to rebuild it, then bundle")
    return [twins[k] for k in sorted(twins)]


def _files(root: Path, folders: list[str]) -> list[str]:
    return [str(p.relative_to(root)) for folder in folders for p in sorted((root / folder).rglob("*")) if p.is_file()]


def _tar(root: Path, names: list[str], out: Path, rewritten: dict[str, bytes]) -> None:
    """An xz tar of ``names`` (relative to ``root``; those in ``rewritten`` with those bytes instead) with no times,
    owners or modes of this machine: the same files give the same bytes."""
    with tarfile.open(out, "w:xz", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 0, 0o644
            if name in rewritten:
                info.size = len(rewritten[name])
                tar.addfile(info, io.BytesIO(rewritten[name]))
                continue
            info.size = (root / name).stat().st_size
            with open(root / name, "rb") as f:
                tar.addfile(info, f)


#: What a run manifest says of where the store was, once packed (the folder `harness bundle import` suggests).
SHIPPED_ROOT = "results"


def without_paths(manifest_file: Path, root: Path) -> bytes:
    """A run's ``manifest.json`` without the paths of the machine that wrote it: the store's folder reads
    ``results`` (the stages' paths, ``config.results_dir``, the command's arguments) and the command's program its
    name only. No checksum covers the manifest itself, and no reader of the store reads these fields."""
    prefixes = sorted({str(root.resolve()), str(root.absolute())}, key=len, reverse=True)

    def clean(value):
        if isinstance(value, str):
            for prefix in prefixes:
                if value == prefix or value.startswith(prefix + os.sep):
                    return SHIPPED_ROOT + value[len(prefix):]
            return value
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    manifest = clean(json.loads(manifest_file.read_text()))
    if isinstance(manifest.get("command"), list) and manifest["command"]:
        manifest["command"][0] = Path(manifest["command"][0]).name
    return json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()


def _split(archive: Path, part_bytes: int) -> list[Path]:
    """``archive`` as itself when it fits in one part, else as ``NAME.000``, ``NAME.001``, … of ``part_bytes``."""
    size = archive.stat().st_size
    if size <= part_bytes:
        return [archive]
    parts = []
    with open(archive, "rb") as f:
        for index in range(-(-size // part_bytes)):
            part = archive.with_name(f"{archive.name}.{index:03d}")
            part.write_bytes(f.read(part_bytes))
            parts.append(part)
    archive.unlink()
    return parts


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


@dataclass
class Built:
    out: Path
    manifest: dict
    sizes: dict[str, int]        # part name → bytes


def build_bundle(results_dir: str | Path, out: str | Path, *, tasks: tuple[str, ...] = (),
                 profiles: tuple[str, ...] = (), teachers: tuple[int, ...] = (), store_k: int | None = SHIPPED_STORE_K,
                 part_bytes: int = PART_BYTES, limit_bytes: int = BUNDLE_BYTES, code: dict | None = None) -> Built:
    """Pack the store ``results_dir`` (its runs of ``tasks`` and ``profiles``; all when empty) into the bundle
    folder ``out``, which is replaced whole (its ``README.md`` stays). ``teachers``: the upstream stages of the
    runs at these teacher seeds only (a teacher and its pre-distilled student are ≈ 10 MB compressed per twin,
    the weights barely compress: three teachers on four twins do not fit the limit), every run's records all the
    same; ``bundle.json`` lists each twin's shipped teachers. ``store_k``: the teacher-output stores of the runs at
    this k only (:data:`SHIPPED_STORE_K`; None: every k). Refused, with nothing written, when the
    parts come to more than ``limit_bytes``: the message gives each twin's archive size and its largest stages.
    ``code``: the commit and dirtiness of the code that packs (recorded; default: this checkout's)."""
    from .runs import git_state

    root, final = Path(results_dir), Path(out)
    twins = collect(root, tasks, profiles, teachers, store_k)
    _check_bundle_folder(final)
    files: dict[str, dict] = {}
    archives = []
    with atomic_dir(final) as tmp:
        for twin in twins:
            for archive_name, folders in twin.archives():
                archives.append(_pack(root, tmp, archive_name, _files(root, folders), twin.name, part_bytes, files))
        designs = design_records(root, {run["run_id"] for twin in twins for run in twin.runs})
        if designs:
            archives.append(_pack(root, tmp, f"{DESIGNS}.tar.xz", designs, None, part_bytes, files))
        statistics = statistics_files(root)
        if statistics:
            archives.append(_pack(root, tmp, f"{STATISTICS[-1]}.tar.xz", statistics, None, part_bytes, files))
        sizes = {part["name"]: part["bytes"] for archive in archives for part in archive["parts"]}
        total = sum(sizes.values())
        if total > limit_bytes:
            raise HarnessError(f"the bundle would be {_mb(total)}, over the {_mb(limit_bytes)} limit: "
                               + "; ".join(_over(root, twin, [a for a in archives if a["twin"] == twin.name])
                                           for twin in twins)
                               + "; bundle fewer tasks (--tasks), fewer teachers' stages (--teachers) or a smaller "
                                 "teacher-output store (its k)")
        commits = sorted({run["commit"] or "unknown" for twin in twins for run in twin.runs})
        manifest = {"format": FORMAT, "version": VERSION, "commit": commits[0] if len(commits) == 1 else None,
                    "commits": commits, "packed_by": code if code is not None else git_state(), "store_k": store_k,
                    "part_bytes": part_bytes, "twins": [t.describe() for t in twins], "archives": archives,
                    "files": files}
        write_json(tmp / MANIFEST, manifest)
        if (final / "README.md").is_file():
            shutil.copy2(final / "README.md", tmp / "README.md")
    return Built(final, manifest, sizes)


def _pack(root: Path, tmp: Path, archive_name: str, names: list[str], twin: str | None, part_bytes: int,
          files: dict[str, dict]) -> dict:
    """Write the files ``names`` (relative to ``root``; run manifests :func:`without_paths`) as the archive
    ``tmp/archive_name``, cut into parts of ``part_bytes``; add each file's sha256 and size to ``files``; return
    the archive's entry of ``bundle.json`` (``twin``: its twin's name, None for the design records)."""
    rewritten = {name: without_paths(root / name, root) for name in names
                 if name.startswith(f"{RUNS}/") and name.endswith("/manifest.json")}
    for name in names:
        if name in rewritten:
            files[name] = {"sha256": hashlib.sha256(rewritten[name]).hexdigest(), "bytes": len(rewritten[name])}
        else:
            files[name] = {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
    archive = tmp / archive_name
    _tar(root, names, archive, rewritten)
    whole = {"sha256": sha256_file(archive), "bytes": archive.stat().st_size}
    parts = _split(archive, part_bytes)
    return {"twin": twin, "name": archive_name, **whole,
            "parts": [{"name": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in parts]}


def design_records(root: Path, runs: set[str]) -> list[str]:
    """The store's design records of sequential grids (relative to ``root``) that place any of ``runs``: without
    them a report of the bundle would judge the grown rows as fixed-n rows, not as the rounds' looks."""
    folder = root / GRIDS
    out = []
    for path in sorted(folder.glob(f"*{DESIGN_SUFFIX}")) if folder.is_dir() else ():
        families = json.loads(path.read_text()).get("families", {})
        if any(run_id in runs for places in families.values() for run_id in places):
            out.append(f"{GRIDS}/{path.name}")
    return out


def _over(root: Path, twin: Twin, archives: list[dict]) -> str:
    """One twin's part of the refusal: its compressed size and its three largest stage or run folders (the design
    records' and sentence statistics' archives, a few MB at most, belong to no twin)."""
    sizes = sorted(((sum(p.stat().st_size for p in (root / f).rglob("*") if p.is_file()), f)
                    for f in twin.folders()), reverse=True)[:3]
    return (f"{twin.name} {_mb(sum(a['bytes'] for a in archives))} (largest before compression: "
            + ", ".join(f"{folder} {_mb(n)}" for n, folder in sizes) + ")")


def _check_bundle_folder(folder: Path) -> None:
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir()
                         if p.name not in BUNDLE_FILES and ".tar.xz" not in p.name)
        if foreign:
            raise HarnessError(f"--out {folder}: holds files a bundle does not write ({', '.join(foreign[:5])}); "
                               f"a bundle replaces its folder whole: choose an empty or a bundle folder")


# ---------------------------------------------------------------- reading and importing

def read_manifest(bundle: str | Path) -> dict:
    """``bundle.json`` of the bundle folder ``bundle``, its format and version checked (one line if not)."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise HarnessError(f"{bundle}: no reference bundle here (no {MANIFEST}); `harness bundle build` makes one")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise HarnessError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("version"), int):
        raise HarnessError(f"{path}: not a reference bundle's manifest")
    if manifest["version"] > VERSION:
        raise HarnessError(f"{path}: bundle format version {manifest['version']}, newer than this code reads "
                           f"({VERSION}); update the harness")
    # what every reader of the bundle indexes: missing or of the wrong kind is a damaged manifest, one line, not a
    # traceback from the middle of an import
    lacking = [key for key, kind in _FIELDS.items() if not isinstance(manifest.get(key), kind)]
    if lacking:
        raise HarnessError(f"{path}: damaged ({', '.join(lacking)} missing or malformed); restore it "
                           f"(git checkout -- {bundle}) or rebuild the bundle")
    return manifest


#: The fields of ``bundle.json`` its readers index, and their kinds.
_FIELDS = {"twins": list, "archives": list, "files": dict}


def baseline_commit(manifest: dict) -> str:
    """The commit of the code that made the bundle's runs, as a person reads it (several: all of them)."""
    commits = [c for c in manifest.get("commits", []) if c]
    return ", ".join(c[:12] for c in commits) or "unknown"


def _check_parts(bundle: Path, manifest: dict) -> None:
    for archive in manifest["archives"]:
        for part in archive["parts"]:
            path = bundle / part["name"]
            if not path.is_file():
                raise HarnessError(f"{path}: a part of the bundle is missing; restore it (git checkout -- "
                                   f"{bundle}) or rebuild the bundle")
            if path.stat().st_size != part["bytes"] or sha256_file(path) != part["sha256"]:
                raise HarnessError(f"{path}: does not match the checksum in {MANIFEST} (truncated or changed); "
                                   f"restore it (git checkout -- {bundle}) or rebuild the bundle")


class _Parts(io.RawIOBase):
    """The parts of one archive read as one stream."""

    def __init__(self, paths: list[Path]):
        self.paths, self.current = list(paths), None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.current is None:
                if not self.paths:
                    return 0
                self.current = open(self.paths.pop(0), "rb")
            n = self.current.readinto(buffer)
            if n:
                return n
            self.current.close()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        super().close()


@dataclass
class Imported:
    results_dir: Path
    added: list[str]        # stage and run folders put in place (and design records, statistics files)
    kept: list[str]         # those the results folder had already (complete): left as they were
    manifest: dict

    def summary(self) -> str:
        """``1242 stage and run folders unpacked, 0 already there (and 243 sentence statistics files)``."""
        folders = [unit for unit in self.added if not is_statistics_file(unit)]
        kept = [unit for unit in self.kept if not is_statistics_file(unit)]
        statistics = len(self.added) - len(folders)
        return (f"{len(folders)} stage and run folders unpacked, {len(kept)} already there"
                + (f" (and {statistics} sentence statistics files)" if statistics else ""))


def _unit(name: str) -> str:
    """The stage or run folder a file of the bundle belongs to: ``cache/<stage>/<key>`` or ``runs/<run>``; a design
    record (``grids/<name>.until-decided.json``) and a sentence statistics file are units of their own."""
    if is_statistics_file(name):
        return name
    parts = name.split("/")
    return "/".join(parts[:3] if parts[0] == CACHE else parts[:2])


def _safe(name: str) -> bool:
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return False
    if parts[0] == GRIDS:
        return len(parts) == 2 and name.endswith(DESIGN_SUFFIX)
    if tuple(parts[:2]) == STATISTICS:
        return is_statistics_file(name)
    return parts[0] in (CACHE, RUNS) and len(parts) >= (4 if parts[0] == CACHE else 3)


def import_bundle(bundle: str | Path, results_dir: str | Path, *, provenance: dict | None = None) -> Imported:
    """Unpack the bundle folder ``bundle`` into ``results_dir``: every part and every file is checked against
    ``bundle.json`` first (a mismatch: one line naming the file, and nothing is written), then each stage and
    run folder the results folder lacks is put in place with one rename (one it has is kept). Writes
    ``results_dir/reference.json``: the bundle's format, commits and twins, and ``provenance`` (e.g. that its
    stage keys were accepted although they differ from this code's)."""
    bundle, root = Path(bundle), Path(results_dir)
    manifest = read_manifest(bundle)
    _check_parts(bundle, manifest)
    expected = manifest["files"]
    (root / TMP).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root / TMP, prefix=".bundle-"))
    try:
        seen = set()
        for archive in manifest["archives"]:
            stream = io.BufferedReader(_Parts([bundle / p["name"] for p in archive["parts"]]), 1 << 20)
            with tarfile.open(fileobj=stream, mode="r|xz") as tar:
                for member in tar:
                    name = member.name
                    if not member.isfile() or not _safe(name) or name not in expected:
                        raise HarnessError(f"{bundle / archive['name']}: holds {name!r}, which {MANIFEST} does not "
                                           f"list as a file; the bundle is not what was packed: rebuild it")
                    target = staging / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    digest = hashlib.sha256()
                    with tar.extractfile(member) as src, open(target, "wb") as dst:
                        while block := src.read(1 << 20):
                            digest.update(block)
                            dst.write(block)
                    if digest.hexdigest() != expected[name]["sha256"] or target.stat().st_size != expected[name]["bytes"]:
                        raise HarnessError(f"{name} (in {bundle / archive['name']}): does not match its checksum in "
                                           f"{MANIFEST}; the bundle is corrupted: restore it or rebuild it")
                    seen.add(name)
            stream.close()
        missing = sorted(set(expected) - seen)
        if missing:
            raise HarnessError(f"{missing[0]}: listed in {bundle / MANIFEST} but in no archive of the bundle"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "") + "; rebuild it")
        for name in expected:   # before anything is put in place
            final = root / name
            if name.startswith(f"{GRIDS}/") and final.is_file() and final.read_bytes() != (staging / name).read_bytes():
                raise HarnessError(f"{final}: another design record under the name of the bundle's; the report would "
                                   f"judge the bundle's grown rows on it: import into another results folder")
        added, kept = [], []
        for unit in sorted({_unit(name) for name in expected}):
            final = root / unit
            if unit.startswith(f"{GRIDS}/") or is_statistics_file(unit):   # one file, written whole or not at all
                if final.is_file():
                    kept.append(unit)
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(staging / unit, 0o644)
                os.replace(staging / unit, final)
                added.append(unit)
                continue
            complete = (final / (STAGE_RECORD if unit.startswith(CACHE) else "manifest.json")).is_file()
            if complete:
                kept.append(unit)
                continue
            if final.exists():   # the store puts folders in place complete: this one is a leftover
                shutil.rmtree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            for path in [staging / unit, *(staging / unit).rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            os.replace(staging / unit, final)
            added.append(unit)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json(root / PROVENANCE, {"format": manifest["format"], "version": manifest["version"],
                                   "commit": manifest.get("commit"), "commits": manifest.get("commits", []),
                                   "bundle": str(bundle), "twins": [twin_name(t["task"], t["profile"],
                                                                              t.get("source", EMBEDDED))
                                                                    for t in manifest["twins"]],
                                   **(provenance or {})})
    return Imported(root, added, kept, manifest)


def read_provenance(results_dir: str | Path) -> dict | None:
    """What :func:`import_bundle` recorded in ``results_dir`` (None: no bundle was imported there)."""
    try:
        return json.loads((Path(results_dir) / PROVENANCE).read_text())
    except (OSError, ValueError):
        return None


def record_aliases(results_dir: str | Path, aliases: dict[str, str]) -> None:
    """Add to ``results_dir/reference.json`` that each stage key of ``aliases`` names the same stage as the shipped
    key it maps to (:func:`harness.grid.reference.rekey_upstream`'s copies)."""
    record = read_provenance(results_dir) or {}
    write_json(Path(results_dir) / PROVENANCE, {**record, "aliases": {**record.get("aliases", {}), **aliases}})


def stage_aliases(results_dir: str | Path) -> dict[str, str]:
    """Stage key → the shipped key of the same stage, for stages an accepted stale bundle lent under this code's
    keys: a report counts the teacher they evaluate once, not once per key. Empty for any other store."""
    return dict((read_provenance(results_dir) or {}).get("aliases", {}))


def stale_note(results_dir: str | Path) -> str | None:
    """The sentence every table and figure of a report carries when its baselines came from a bundle whose stage
    keys this code does not plan (imported with ``--accept-stale-bundle``); None otherwise."""
    record = read_provenance(results_dir)
    if not record or not record.get("accepted_stale"):
        return None
    commits = ", ".join(c[:12] for c in record.get("commits", []) if c) or "unknown"
    return (f"Baselines from the reference bundle made by commit {commits}, whose stage keys differ from this code's "
            f"(accepted with --accept-stale-bundle)")
