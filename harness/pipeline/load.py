"""The data of a cell: each split of its task, drawn to the caps of its data config.

What the stages train and evaluate on is a function of the task's records and of this draw, so this
module is part of the data's identity (the ``data`` input of every stage key), apart from how a stage
is built (:mod:`.stages`).
"""

from __future__ import annotations

from ..config import DataConfig
from ..datasets.sampling import describe_draw, draw_examples
from ..errors import HarnessError
from ..task import Example, Task

SPLITS = ("train", "validation", "test")


def load_examples(task: Task, data: DataConfig) -> tuple[dict[str, list[Example]], dict[str, dict]]:
    """(split → examples, split → what they are: :func:`harness.datasets.sampling.describe_draw`).

    Every split is loaded and checked before anything is written; a capped split keeps the examples of a
    seeded sample of its inputs (``data.seed``), stratified by source where the task names one
    (:mod:`harness.datasets.sampling`): training by ``train_subset`` inputs and ``max_train_examples`` rows,
    validation and test by ``max_eval_examples`` inputs."""
    caps = {"train": {"inputs": data.train_subset, "rows": data.max_train_examples},
            "validation": {"inputs": data.max_eval_examples}, "test": {"inputs": data.max_eval_examples}}
    examples, drawn = {}, {}
    for split in SPLITS:
        examples[split] = draw_examples(task.load(split), data.seed, **caps[split])
        if not examples[split]:
            raise HarnessError(f"task {task.name!r}: the {split} split is empty")
        drawn[split] = describe_draw(examples[split])
    return examples, drawn
