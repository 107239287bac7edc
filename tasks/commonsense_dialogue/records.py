"""Reading, validating and pairing Commonsense-Dialogues records.

Two sources hold the same dialogues in different shapes:

* the release JSON files (``train.json``, ``valid.json``, ``test.json``): one JSON object
  per file mapping a dialogue id to ``{"context": str, "speaker": str, "turns": [str, ...]}``;
* the Hugging Face hub copy (``gretelai/commonsense-dialogues``): one row per dialogue
  with the columns ``context``, ``speaker``, ``turns`` and an id column
  (``conversation_id`` or ``id``; the row number when there is none).

Both become :class:`Dialogue` records through :func:`normalise_dialogue`, and
:func:`dialogues_to_examples` turns dialogues into (source, response) pairs:

* **Pairing rule**: every turn is a response, the first one included; its source is the
  social context followed by the turns before it, at most the last
  :data:`MAX_HISTORY_TURNS` (15). This rule gives exactly the paper's 6,619 validation
  pairs (the sum of the turn counts of ``valid.json``); skipping the first turn
  (requiring at least one previous turn) would give 5,462.
* **Source format**: ``context | turn_1 | turn_2 | ... | turn_k`` — the pieces joined by
  :data:`SEPARATOR` (" | ", plain text, so any tokenizer handles it and no special token is
  needed). The model adapter appends EOS after the source and the response follows.
  The ``speaker`` field is validated but not written into the source: it names the
  person of the context, and the context names that person in 99% of the release.

Every problem with the data is one line of :class:`HarnessError` that names the file (or
hub data set) and the first bad dialogue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from harness.datasets.release import check_split, read_json, release_file, short
from harness.datasets.sources import hub_rows
from harness.errors import HarnessError
from harness.task import Example

log = logging.getLogger(__name__)

RELEASE_FILES = {"train": "train.json", "validation": "valid.json", "test": "test.json"}
HUB_ID_COLUMNS = ("conversation_id", "id")

MAX_HISTORY_TURNS = 15
SEPARATOR = " | "


@dataclass(frozen=True)
class Dialogue:
    """One dialogue: the social context, the person it is about, and the turns in order."""

    id: str
    context: str
    speaker: str
    turns: tuple[str, ...]


@dataclass(frozen=True)
class PairCounts:
    """Size of a split as dialogues and as (source, response) pairs."""

    dialogues: int
    turns: int
    pairs: int
    capped: int          # pairs whose history was cut to the last MAX_HISTORY_TURNS turns

    @property
    def mean_turns(self) -> float:
        return self.turns / self.dialogues if self.dialogues else 0.0


# --------------------------------------------------------------------------- validation
def _fail(where: str, key: str, what: str) -> HarnessError:
    return HarnessError(f"{where}: dialogue {key!r}: {what}")


def normalise_dialogue(record: Any, where: str, key: str) -> Dialogue:
    """Validate one dialogue record and return it as a :class:`Dialogue`.

    ``record`` must be an object with string ``context`` and ``speaker`` and a non-empty
    list of string ``turns``; other keys are ignored. Texts are kept as they are
    (empty turns are skipped, and counted, by :func:`dialogues_to_examples`). Raises
    :class:`HarnessError` naming ``where`` and ``key`` on the first problem.
    """
    if not isinstance(record, Mapping):
        raise _fail(where, key, f"must be a JSON object with context, speaker and turns, "
                                f"got {type(record).__name__}")
    missing = [name for name in ("context", "speaker", "turns") if name not in record]
    if missing:
        raise _fail(where, key, f"missing required field(s) {', '.join(map(repr, missing))}")
    for name in ("context", "speaker"):
        if not isinstance(record[name], str):
            raise _fail(where, key, f"{name!r} must be a string, got {short(record[name])}")
    turns = record["turns"]
    if not isinstance(turns, (list, tuple)) or not turns:
        raise _fail(where, key, f"'turns' must be a non-empty list of strings, got {short(turns)}")
    for j, turn in enumerate(turns):
        if not isinstance(turn, str):
            raise _fail(where, key, f"turn {j} must be a string, got {short(turn)}")
    return Dialogue(str(key), record["context"], record["speaker"], tuple(turns))


# --------------------------------------------------------------------------- loaders
def read_release_json(path) -> list[Dialogue]:
    """Read and validate one release file (a JSON object of id → dialogue), in file order."""
    data = read_json(path, dict, "a JSON object of id → dialogue",
                     example='{"1": {"context": ..., "speaker": ..., "turns": [...]}}', nothing="dialogues")
    return normalise_release(data, str(path))


def normalise_release(data: Mapping[str, Any], where: str) -> list[Dialogue]:
    """The dialogues of one split in the release shape (id → dialogue), validated, in order."""
    return [normalise_dialogue(record, where, key) for key, record in data.items()]


def load_local(data_dir, split: str) -> list[Dialogue]:
    """Dialogues of ``split`` from the release file in ``data_dir`` (validation → valid.json)."""
    return read_release_json(release_file(data_dir, split, RELEASE_FILES, "Commonsense-Dialogues"))


def _row_id(row: Mapping, index: int) -> str:
    for column in HUB_ID_COLUMNS:
        value = row.get(column)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return str(index)


def load_hub(hub_id: str, revision: str | None, split: str) -> list[Dialogue]:
    """Dialogues of ``split`` from a Hugging Face data set (or a local folder of parquet or
    JSON-lines files in the hub shape), normalised like the release files.

    Any failure to get the data (offline, unknown id or revision, missing split, ...)
    becomes one :class:`HarnessError` line that points to the local release files instead.
    """
    check_split(split, "Commonsense-Dialogues")
    rows = hub_rows("Commonsense-Dialogues", hub_id, revision, split,
                    f"the release files ({', '.join(RELEASE_FILES.values())})")
    where = f"{hub_id} [{split}]"
    if not rows:
        raise HarnessError(f"{where}: contains no dialogues")
    return [normalise_dialogue(row, where, _row_id(row, i) if isinstance(row, Mapping) else str(i))
            for i, row in enumerate(rows)]


# --------------------------------------------------------------------------- pairing
def format_source(context: str, history: Sequence[str], separator: str = SEPARATOR) -> str:
    """``context | turn | turn ...``: the model input for the turn that follows ``history``."""
    return separator.join([context.strip(), *(t.strip() for t in history)])


def dialogue_pairs(dialogue: Dialogue, max_history: int = MAX_HISTORY_TURNS,
                   separator: str = SEPARATOR) -> list[tuple[int, str, str]]:
    """(turn index, source, response) for every non-empty turn of ``dialogue``.

    The history of turn t is the non-empty turns before it, the last ``max_history`` of
    them; empty turns are neither responses nor history.
    """
    if max_history < 0:
        raise ValueError(f"max_history must be >= 0, got {max_history}")
    out = []
    history: list[str] = []
    for t, turn in enumerate(dialogue.turns):
        text = turn.strip()
        if not text:
            continue
        kept = history[-max_history:] if max_history else []
        out.append((t, format_source(dialogue.context, kept, separator), text))
        history.append(text)
    return out


def dialogues_to_examples(dialogues: Iterable[Dialogue], split: str, id_prefix: str = "dialogue",
                          max_history: int = MAX_HISTORY_TURNS, separator: str = SEPARATOR) -> list[Example]:
    """One example per (source, response) pair, in every split (each pair is one input
    with its one reference, as in the paper's counts); ids are ``prefix-split-id-turn``."""
    check_split(split, "Commonsense-Dialogues")
    examples = []
    empty = 0
    for dialogue in dialogues:
        pairs = dialogue_pairs(dialogue, max_history, separator)
        empty += len(dialogue.turns) - len(pairs)
        examples.extend(Example(id=f"{id_prefix}-{split}-{dialogue.id}-{t}", source=source, target=response,
                                references=(response,)) for t, source, response in pairs)
    if empty:
        log.warning("Commonsense-Dialogues %s: skipped %d empty turn(s)", split, empty)
    return examples


def count_pairs(dialogues: Iterable[Dialogue], max_history: int = MAX_HISTORY_TURNS) -> PairCounts:
    """How many dialogues, turns and pairs a split has, and how many pairs the cap shortened."""
    if max_history < 0:
        raise ValueError(f"max_history must be >= 0, got {max_history}")
    n_dialogues = n_turns = n_pairs = capped = 0
    for dialogue in dialogues:
        n_dialogues += 1
        n_turns += len(dialogue.turns)
        n_nonempty = sum(1 for t in dialogue.turns if t.strip())
        n_pairs += n_nonempty
        capped += max(0, n_nonempty - max_history - 1)   # turn i (0-based) has i previous turns
    return PairCounts(n_dialogues, n_turns, n_pairs, capped)

