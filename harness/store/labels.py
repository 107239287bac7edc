"""How a run names its stages: the labels of ``manifest.json`` ``stages`` and ``compute.parquet`` ``stage``.

    tokenizer | teacher | pseudo_labels | teacher_outputs/<source> | predistill | method | evaluation/<model>

``method`` is the cell's own trained model (in the pre-distill cell, the pre-distill stage under a
second label); ``evaluation/<model>`` evaluates ``teacher``, ``predistill`` or the method. The
pipeline's plan (:mod:`harness.pipeline.graph`) makes these labels; the store, the grid runner and
the reports read them through the functions here, never by parsing them again.
"""

from __future__ import annotations

TOKENIZER, TEACHER, PSEUDO_LABELS, PREDISTILL = "tokenizer", "teacher", "pseudo_labels", "predistill"
METHOD = "method"            # the label of the cell's own trained model (the method stage)
EVALUATION = "evaluation"    # evaluation labels are evaluation/<model>
TEACHER_OUTPUTS = "teacher_outputs"   # the teacher-output store: teacher_outputs/<prefix source>


def teacher_outputs_label(source: str) -> str:
    return f"{TEACHER_OUTPUTS}/{source}"


def evaluation_label(model: str) -> str:
    return f"{EVALUATION}/{model}"


def shown_label(label: str, method: str) -> str:
    """How a stage label of a run of ``method`` reads to a person: ``method`` is the method's own name."""
    return method if label == METHOD else label


def training_label(model: str, method: str) -> str:
    """The label of the stage that trained ``model`` (an evaluated model: teacher, predistill, the method)
    in a run of ``method``; the pre-distill run's own model is its pre-distill stage."""
    return model if model in (TEACHER, PREDISTILL) else METHOD
