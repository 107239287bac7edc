"""Commonsense-Dialogues (Zhou et al. 2021): social context + previous turns → next turn.

A decoder-only task (PAPER.md §3): the teacher is a GPT-2-class model (DialoGPT-medium in
the ``paper`` profile); source and response are one sequence and only the response
tokens are scored. Sources: the embedded twin (default, offline), the hub copy
(``gretelai/commonsense-dialogues``), or a folder of the release files ``train.json``,
``valid.json``, ``test.json`` (``--data-dir DIR``). Pairing and source format:
:mod:`harness_tasks.commonsense_dialogue.records`.

Decoding follows the paper: test outputs and the student's online samples are nucleus
samples (top-p 0.9, one beam; the test with 3-64 new tokens), pseudo-labels are beam-5
outputs. Evaluation by sampling is stochastic: its numbers depend on the torch seed,
which the pipeline sets from the run's seed, so a run repeats exactly but two seeds
differ by sampling noise as well as by training. The paper keeps the last checkpoint
on dialogue, so no stage selects checkpoints on validation here.
"""

from __future__ import annotations

from typing import Sequence

from harness.metrics import merge_scores, nlgeval_bleu, sacrebleu_scores
from harness.datasets.sources import SourcedTask
from harness.registry import register_task
from harness.task import Scores

from . import records, twin

# Nucleus sampling with one beam (PAPER.md §2-3); top_k None switches top-k filtering off.
_NUCLEUS = {"do_sample": True, "num_beams": 1, "top_p": 0.9, "top_k": None}

_COMMON = {
    "teacher.family": "gpt2",
    "student.encoder_layers": 0,                      # decoder-only: no encoder stack
    **{f"eval_decode.{k}": v for k, v in _NUCLEUS.items()}, "eval_decode.min_new_tokens": 3,
    **{f"selection_decode.{k}": v for k, v in _NUCLEUS.items()}, "selection_decode.min_new_tokens": 3,
    **{f"online_sampling.{k}": v for k, v in _NUCLEUS.items()},
    "pseudo_labels.num_beams": 5, "pseudo_labels.do_sample": False,
    # Dialogue keeps the last checkpoint (PAPER.md §2): no validation-based selection.
    "teacher_train.select_best": False, "teacher_train.evals_per_epoch": 0,
    "student_train.select_best": False, "student_train.evals_per_epoch": 0,
    "kd_train.select_best": False, "kd_train.evals_per_epoch": 0,
}

_PROFILES = {
    # Sizes are dialogues (≈ 5.5 pairs each on the twin).
    # A 600-token vocabulary keeps the ci sources (up to 6 turns) under 160 tokens, so none is cut.
    "ci": {"data.train_size": 30, "data.validation_size": 2, "data.test_size": 2,
           "tokenizer.vocab_size": 600, "tokenizer.max_source_tokens": 160},
    # Train: ≈ 5,000 pairs, so that a teacher epoch costs about what DART's does (its steps are
    # no dearer: one 4-layer stack over ≈ 48 tokens vs. T5's 3+3 layers). Test: ≈ 300 pairs,
    # as many inputs as DART's cpu test split.
    "cpu": {"data.train_size": 900, "data.validation_size": 20, "data.test_size": 60,
            "teacher.decoder_layers": 4, "student.decoder_layers": 2,
            "eval_decode.max_new_tokens": 64, "selection_decode.max_new_tokens": 64},
    # DialoGPT-medium (24 layers, GPT-2-medium width) fine-tuned; a 4-layer student copies
    # layers [0, 8, 16, 23]. Responses: 3-64 new tokens.
    "paper": {"teacher.pretrained": "microsoft/DialoGPT-medium", "student.decoder_layers": 4,
              "eval_decode.max_new_tokens": 64, "selection_decode.max_new_tokens": 64,
              "online_sampling.max_new_tokens": 64, "pseudo_labels.max_new_tokens": 64},
}


@register_task("commonsense_dialogue")
class CommonsenseDialogueTask(SourcedTask):
    """Social context + previous turns (``context | turn | …``, last 15 turns) → next turn; BLEU-1/2."""

    architecture = "decoder-only"
    source_truncation = "left"          # an over-long history loses its oldest turns, not its latest
    # *_nlgeval: nlg-eval's COCO BLEU after the two-sentence cut, the numbers the paper reports.
    metrics = ("bleu1", "bleu2", "bleu1_nlgeval", "bleu2_nlgeval")
    selection_metric = "bleu2"
    # PAPER.md §2: JS β 0.85; PAPER.md §1: the hidden-state term of pre-distillation weighs 0.1 on dialogue
    method_defaults = {"js": {"beta": 0.85}, "predistill": {"alpha_hid": 0.1}}
    hub_id = "gretelai/commonsense-dialogues"
    hub_revision = "refs/convert/parquet"

    local_records = staticmethod(records.load_local)
    hub_records = staticmethod(records.load_hub)
    to_examples = staticmethod(records.dialogues_to_examples)

    def embedded_records(self, split: str, size: int, seed: int) -> list[records.Dialogue]:
        return records.normalise_release(twin.generate_split(split, size, seed), f"embedded twin [{split}]")

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Scores:
        return merge_scores(sacrebleu_scores(hypotheses, references, ("bleu1", "bleu2")),
                            nlgeval_bleu(hypotheses, references))

    @classmethod
    def profile_overrides(cls, profile: str) -> dict:
        return {**_COMMON, **_PROFILES.get(profile, {})}
