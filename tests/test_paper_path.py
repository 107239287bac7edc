"""The paper path runs here, on CPU: each task's ``paper`` profile end to end with a tiny local model of
the paper's architecture class standing for the hub model, and real or fixture data as local files.

Each test builds a random-weight model of the class the paper uses (``BartForConditionalGeneration``
for DART and XSum, ``T5ForConditionalGeneration`` for WMT, ``GPT2LMHeadModel`` for dialogue) with a
tokenizer of the hub model's class, ``save_pretrained``s both into a folder that stands for the hub id,
runs the ``paper`` recipe of JS (pseudo-labels, pre-distillation, online sampling) with ``--set``
shrinking sizes, and checks that the run finished with finite metrics, that every recipe value the test
did not set reached the run's manifest, and that each student stage froze its embeddings exactly when
the recipe says so. DART and dialogue read slices of the real release
files in ``../shared/data`` (skipped where they are absent); XSum and WMT read fixtures written from
their embedded twins in the local per-split format.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.config import DecodeConfig, resolve_config
from harness.data import pad, tokenize
from harness.lm import embedding_parameters, language_model, load_model, make_student
from harness.pipeline import Pipeline


def shared_data() -> Path:
    """``../shared/data`` beside the repository (for a git worktree: beside its main checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    candidates = [root.parent / "shared" / "data"]
    common = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=root,
                            capture_output=True, text=True)
    if common.returncode == 0:
        candidates.append(Path(common.stdout.strip()).parent.parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DATA = shared_data()
METHOD = "js"

# Sizes (data, epochs, batches, output lengths: the recipe's minimum lengths, up to 12, exceed what a test
# decodes); the recipe's rates, schedules (warm-up steps, accumulation, frozen embeddings, validation
# fractions) and decoding choices (beams, top-k/top-p, length penalties, no-repeat) stay as it sets them.
# Batches of 2 give every stage at least two optimizer steps (the first runs at learning rate 0 under warm-up).
TRAIN_EXAMPLES, EVAL_EXAMPLES, BATCH, NEW_TOKENS = 8, 3, 2, 6
STAGES = ("teacher_train", "student_train", "kd_train")
DECODES = ("pseudo_labels", "online_sampling", "selection_decode", "eval_decode", "teacher_dist_sampling")
# The students keep their last step rather than the best validated one: an untrained tiny model ties on every
# validation, a tie keeps the first checkpoint, and the first step changes nothing; so the saved students show
# what training froze and what it moved. (The teachers of DART and dialogue still select.)
SHRUNK = {
    "data.max_train_examples": TRAIN_EXAMPLES, "data.max_eval_examples": EVAL_EXAMPLES,
    **{f"{stage}.{key}": value for stage in STAGES for key, value in (("epochs", 1), ("batch_size", BATCH))},
    "student_train.select_best": False, "kd_train.select_best": False,
    **{f"{decode}.{key}": value for decode in DECODES
       for key, value in (("max_new_tokens", NEW_TOKENS), ("min_new_tokens", 2))},
}


# ---------------------------------------------------------------- tiny tokenizers of the hub classes
def byte_level_bpe(texts: list[str], vocab_size: int, special_tokens: list[str]) -> tuple[dict, list[tuple]]:
    """The vocabulary and merges of a byte-level BPE trained on ``texts`` (specials first, in order)."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, special_tokens=special_tokens, show_progress=False)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def bart_tokenizer(texts: list[str]):
    from transformers import BartTokenizerFast

    vocab, merges = byte_level_bpe(texts, 400, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return BartTokenizerFast(vocab=vocab, merges=merges)


def gpt2_tokenizer(texts: list[str]):
    from transformers import GPT2TokenizerFast

    vocab, merges = byte_level_bpe(texts, 400, ["<|endoftext|>"])
    return GPT2TokenizerFast(vocab=vocab, merges=merges)


def t5_tokenizer(texts: list[str]):
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import T5TokenizerFast

    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(texts, vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"],
                                unk_token="<unk>", show_progress=False)
    pieces = [(piece, score) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]
    return T5TokenizerFast(vocab=pieces, extra_ids=0)


# ---------------------------------------------------------------- tiny models of the paper classes
# Decoding settings a hub BART carries in its generation config (these are facebook/bart-large-xsum's);
# the recipe writes every decoding value out, so none of these may reach a run.
HUB_BART_GENERATION = {"num_beams": 6, "min_length": 11, "max_length": 62, "no_repeat_ngram_size": 3,
                       "length_penalty": 1.0, "early_stopping": True}


def tiny_bart(tok):
    from transformers import BartConfig, BartForConditionalGeneration

    model = BartForConditionalGeneration(BartConfig(
        vocab_size=len(tok), d_model=16, encoder_layers=3, decoder_layers=3, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id))
    model.generation_config.update(**HUB_BART_GENERATION, forced_bos_token_id=tok.bos_token_id)
    return model


def tiny_t5(tok):
    from transformers import T5Config, T5ForConditionalGeneration

    return T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok), d_model=16, d_kv=8, d_ff=32, num_layers=3, num_decoder_layers=2, num_heads=2,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id))


def tiny_gpt2(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tok), n_embd=16, n_layer=4, n_head=2, n_inner=32, n_positions=1024,
        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))


def save_hub_stand_in(folder: Path, tokenizer, tiny_model) -> Path:
    """What ``from_pretrained(hub id)`` would find: a ``tiny_model(tokenizer)`` and the tokenizer, side by side."""
    torch.manual_seed(0)
    folder.mkdir(parents=True)
    tiny_model(tokenizer).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


# ---------------------------------------------------------------- data folders
def need_shared(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is absent (the real release files live in ../shared/data beside the repository)")
    return path


def dart_folder(folder: Path) -> tuple[Path, list[str]]:
    """Train/validation/test release files cut from the real DART dev file."""
    from harness_tasks.dart.records import RELEASE_FILES, linearise

    records = json.loads(need_shared(SHARED_DATA / "dart" / "dart-v1.1.1-full-dev.json").read_text())
    folder.mkdir()
    parts = {"train": records[:12], "validation": records[12:16], "test": records[16:20]}
    for split, part in parts.items():
        (folder / RELEASE_FILES[split]).write_text(json.dumps(part))
    texts = [linearise(r["tripleset"]) for p in parts.values() for r in p]
    return folder, texts + [a["text"] for p in parts.values() for r in p for a in r["annotations"]]


def dialogue_folder(folder: Path) -> tuple[Path, list[str]]:
    """Train/valid/test release files cut from the real Commonsense-Dialogues validation file."""
    from harness_tasks.commonsense_dialogue.records import RELEASE_FILES

    release = need_shared(SHARED_DATA / "commonsense_dialogues" / "valid.json")
    dialogues = list(json.loads(release.read_text()).items())
    folder.mkdir()
    parts = {"train": dialogues[:4], "validation": dialogues[4:6], "test": dialogues[6:8]}
    for split, part in parts.items():
        (folder / RELEASE_FILES[split]).write_text(json.dumps(dict(part)))
    return folder, [text for p in parts.values() for _, d in p for text in (d["context"], *d["turns"])]


def twin_folder(folder: Path, twin, fields) -> tuple[Path, list[str]]:
    """Per-split JSON-lines fixtures (the local format of XSum and WMT) written from the embedded twin."""
    folder.mkdir()
    texts = []
    for split, n in (("train", 12), ("validation", 4), ("test", 4)):
        rows = twin.generate_split(split, n, 0)
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        texts += [text for r in rows for text in fields(r)]
    return folder, texts


# ---------------------------------------------------------------- the run and its checks
def run_paper(task: str, pretrained: Path, data_dir: Path, results: Path):
    """The task's ``paper`` profile of JS with ``pretrained`` as the teacher, ``data_dir`` as the data, shrunk."""
    sets = {"results_dir": str(results), "teacher.pretrained": str(pretrained), "data.source": "local",
            "data.data_dir": str(data_dir), **SHRUNK}
    cfg = resolve_config(task, METHOD, "paper", sets=[(k, str(v)) for k, v in sets.items()])
    return Pipeline(cfg).run(), sets


def lookup(config: dict, key: str):
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def check_paper_run(task: str, outcome, sets: dict) -> None:
    """Finite metrics for every evaluated model; every recipe value the test did not set reached the run;
    each student stage froze its embeddings exactly when the recipe says so."""
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    assert {"teacher", "predistill", METHOD} <= set(metrics["model"])
    assert metrics["value"].map(math.isfinite).all(), metrics[~metrics["value"].map(math.isfinite)]
    manifest = outcome.manifest
    recipe = importlib.import_module(f"harness_tasks.{task}").PAPER_RECIPE
    kept = {key: value for key, (value, _) in recipe.items() if key not in sets}
    for key, value in kept.items():
        if key.startswith("method."):
            method, parameter = key.split(".")[1:]
            if method == METHOD:
                assert manifest["method"]["params"][parameter] == value, key
        else:
            assert lookup(manifest["config"], key) == value, key
    check_frozen_embeddings(manifest)


def check_frozen_embeddings(manifest: dict) -> None:
    """Pre-distillation starts from the teacher's layer copy and KD from the pre-distilled student: each
    trained (some layer moved) and left its token and position embeddings as they were exactly when its
    schedule freezes them."""
    stages, config = manifest["stages"], manifest["config"]
    teacher = load_model(stages["teacher"]["path"])
    starts = {"predistill": make_student(teacher, config["student"]["encoder_layers"],
                                         config["student"]["decoder_layers"])[0],
              "method": load_model(stages["predistill"]["path"])}
    for label, schedule in (("predistill", "student_train"), ("method", "kd_train")):
        trained = load_model(stages[label]["path"])
        before, after = dict(starts[label].named_parameters()), dict(trained.named_parameters())
        assert before.keys() == after.keys()
        embeddings = set(embedding_parameters(trained))
        moved = {name for name in after if not torch.equal(before[name], after[name])}
        assert embeddings and moved - embeddings, f"{label}: no layer moved"
        assert (not moved & embeddings) == config[schedule]["freeze_embeddings"], (label, sorted(moved & embeddings))


@pytest.mark.parametrize("family", ["bart", "gpt2"])
def test_decoding_ignores_the_generation_config_of_a_hub_model(family):
    """A hub model's own decoding settings (minimum length, forced BOS, beams, suppressed tokens) never join
    the recipe's: the adapters decode with the DecodeConfig alone."""
    from transformers import GenerationConfig

    texts = ["the cat sat on the mat .", "a dog ran in the park .", "birds sing in the morning ."] * 4
    tok, tiny = (bart_tokenizer(texts), tiny_bart) if family == "bart" else (gpt2_tokenizer(texts), tiny_gpt2)
    torch.manual_seed(0)
    model = tiny(tok).eval()
    lm = language_model(model, tok)
    ids, mask = pad(tokenize(tok, texts[:3], 16)[0], lm.pad_id)
    greedy = DecodeConfig(num_beams=1, do_sample=False, max_new_tokens=8)
    hub_settings = model.generation_config
    model.generation_config = GenerationConfig()
    expected = lm.generate(lm.encode(ids, mask), greedy)
    first_words = set(expected.tokens[:, 0].tolist()) - set(tok.all_special_ids)
    hub_settings.update(**HUB_BART_GENERATION, **({"suppress_tokens": sorted(first_words)} if first_words else {}))
    hub_settings.min_new_tokens = 4   # an untrained model's greedy output may be EOS at once
    model.generation_config = hub_settings
    got = lm.generate(lm.encode(ids, mask), greedy)
    assert torch.equal(got.tokens, expected.tokens) and torch.equal(got.mask, expected.mask)


def xsum_folder(folder: Path) -> tuple[Path, list[str]]:
    from harness_tasks.xsum import twin

    return twin_folder(folder, twin, lambda r: (r["document"], r["summary"]))


def wmt_folder(folder: Path) -> tuple[Path, list[str]]:
    from harness_tasks.wmt16_en_ro import twin
    from harness_tasks.wmt16_en_ro.records import T5_PREFIX

    return twin_folder(folder, twin, lambda r: (T5_PREFIX + r["translation"]["en"], r["translation"]["ro"]))


# task → (its data folder, a tokenizer of the hub model's class, a tiny model of the paper's class)
PAPER_PATHS = {
    "dart": (dart_folder, bart_tokenizer, tiny_bart),
    "xsum": (xsum_folder, bart_tokenizer, tiny_bart),
    "wmt16_en_ro": (wmt_folder, t5_tokenizer, tiny_t5),
    "commonsense_dialogue": (dialogue_folder, gpt2_tokenizer, tiny_gpt2),
}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(PAPER_PATHS))
def test_the_paper_profile_runs_end_to_end(task, tmp_path):
    data_folder, tokenizer_of, tiny_model = PAPER_PATHS[task]
    data_dir, texts = data_folder(tmp_path / "data")
    tok = tokenizer_of(texts)
    hub_id = importlib.import_module(f"harness_tasks.{task}").PAPER_RECIPE["teacher.pretrained"][0]
    model_dir = save_hub_stand_in(tmp_path / hub_id.replace("/", "--"), tok, tiny_model)
    outcome, sets = run_paper(task, model_dir, data_dir, tmp_path / "results")
    check_paper_run(task, outcome, sets)
