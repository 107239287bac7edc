"""The results store: atomic checksummed writes (:mod:`.io`), the content-addressed stage
cache (:mod:`.cache`), run folders (:mod:`.runs`) and their readers (:mod:`.read`)."""

from .read import (legacy_directions, load_compute, load_curves, load_examples, load_failures, load_manifests,
                   load_metrics, read_manifest, run_folders)

__all__ = ["legacy_directions", "load_compute", "load_curves", "load_examples", "load_failures", "load_manifests",
           "load_metrics", "read_manifest", "run_folders"]
