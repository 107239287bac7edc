"""DART (data-to-text, Nan et al. 2021): triple sets → one-sentence-or-few descriptions.

Sources: the embedded twin (default, offline), the hub's parquet conversion
(``Yale-LILY/dart`` under ``refs/convert/parquet``), or a folder of the release
JSON files (``data.source=local``, ``data.data_dir=DIR``).
"""

from __future__ import annotations

from typing import Sequence

from harness.metrics import sacrebleu_scores
from harness.errors import HarnessError
from harness.registry import register_task
from harness.task import Example, Scores, Task

from . import records, twin


@register_task("dart")
class DartTask(Task):
    """Linearised triples (``subj : rel : obj | …``, relation lower-cased) → text; multi-reference BLEU/chrF/TER."""

    metrics = ("bleu", "chrf", "ter")
    lower_is_better = frozenset({"ter"})
    selection_metric = "bleu"
    method_defaults = {"js": {"beta": 0.85}}   # PAPER.md §2: β of JS
    data_sources = ("embedded", "local", "hub")
    hub_id = "Yale-LILY/dart"
    hub_revision = "refs/convert/parquet"

    def records(self, split: str) -> list[dict]:
        d = self.data
        if d.source == "embedded":
            size = {"train": d.train_size, "validation": d.validation_size, "test": d.test_size}[split]
            return twin.generate_split(split, size, d.seed)
        if d.source == "local":
            if not d.data_dir:
                raise HarnessError("data.source=local needs a folder: --data-dir DIR (or --set data.data_dir=DIR)")
            return records.load_local(d.data_dir, split)
        if d.source == "hub":
            return records.load_hub(d.hub_id or self.hub_id, d.revision or self.hub_revision, split)
        raise HarnessError(f"unknown data source {d.source!r} for task dart; known: {', '.join(self.data_sources)}")

    def load(self, split: str) -> list[Example]:
        return records.records_to_examples(self.records(split), split, id_prefix="dart")

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
        return sacrebleu_scores(hypotheses, references, self.metrics)

    @classmethod
    def profile_overrides(cls, profile: str) -> dict:
        if profile == "paper":
            # BART-large teacher fine-tuned on DART, 3-encoder/1-decoder student (PAPER.md §3).
            return {"teacher.pretrained": "facebook/bart-large", "teacher.family": "bart", "student.encoder_layers": 3,
                    "student.decoder_layers": 1, "pseudo_labels.num_beams": 5, "eval_decode.num_beams": 5}
        return {}
