"""The results store: atomic checksummed writes (:mod:`.io`), the content-addressed stage
cache (:mod:`.cache`), run folders (:mod:`.runs`) and their readers (:mod:`.read`).

The readers are imported on first use: they need pandas, which a command that only writes or
checks a folder (``harness list``, ``harness config``, the CLI's start-up) should not pay for."""

__all__ = ["legacy_directions", "load_compute", "load_curves", "load_examples", "load_failures", "load_manifests",
           "load_metrics", "read_manifest", "run_folders"]


def __getattr__(name: str):
    if name in __all__:
        from . import read

        return getattr(read, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
