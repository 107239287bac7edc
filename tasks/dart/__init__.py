"""DART (data-to-text, Nan et al. 2021): triple sets → one-sentence-or-few descriptions.

Sources: the embedded twin (default, offline), the hub's parquet conversion
(``Yale-LILY/dart`` under ``refs/convert/parquet``), or a folder of the release
JSON files (``data.source=local``, ``data.data_dir=DIR``).
"""

from __future__ import annotations

from typing import Sequence

from harness.metrics import dart_official_bleu, merge_scores, sacrebleu_scores
from harness.datasets.sources import SourcedTask
from harness.registry import register_task
from harness.task import Scores

from . import records, twin


@register_task("dart")
class DartTask(SourcedTask):
    """Linearised triples (``subj : rel : obj | …``, relation lower-cased) → text; multi-reference BLEU/chrF/TER."""

    # bleu_official: the DART kit's BLEU (lower-cased, split on non-word characters, 3 references), the
    # number the paper reports; bleu: sacreBLEU with every reference.
    metrics = ("bleu", "chrf", "ter", "bleu_official")
    lower_is_better = frozenset({"ter"})
    selection_metric = "bleu"
    method_defaults = {"js": {"beta": 0.85}}   # PAPER.md §2: β of JS
    hub_id = "Yale-LILY/dart"
    hub_revision = "refs/convert/parquet"

    embedded_records = staticmethod(twin.generate_split)
    local_records = staticmethod(records.load_local)
    hub_records = staticmethod(records.load_hub)
    to_examples = staticmethod(records.records_to_examples)

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
        return merge_scores(sacrebleu_scores(hypotheses, references, ("bleu", "chrf", "ter")),
                            dart_official_bleu(hypotheses, references))

    @classmethod
    def profile_overrides(cls, profile: str) -> dict:
        if profile == "paper":
            # BART-large teacher fine-tuned on DART, 3-encoder/1-decoder student (PAPER.md §3).
            return {"teacher.pretrained": "facebook/bart-large", "teacher.family": "bart", "student.encoder_layers": 3,
                    "student.decoder_layers": 1, "pseudo_labels.num_beams": 5, "eval_decode.num_beams": 5}
        return {}
