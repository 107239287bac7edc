"""The `from_pretrained` path, exercised with local `save_pretrained` folders (no hub access)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from harness.config import ModelConfig, resolve_config
from harness.lm import build_model, train_tokenizer
from harness.pipeline import Pipeline
from harness.store.labels import PSEUDO_LABELS, TEACHER, TOKENIZER
from harness.errors import HarnessError
from harness_tasks.dart import records, twin


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    """A tiny T5 and its tokenizer saved like a hub checkpoint."""
    folder = tmp_path_factory.mktemp("pretrained")
    examples = records.records_to_examples(twin.generate_split("train", 40, 0), "train", "x")
    tok = train_tokenizer([e.source for e in examples] + [e.target for e in examples], 300)
    model = build_model(ModelConfig(d_model=32, encoder_layers=2, decoder_layers=2, heads=2, ffn_dim=64), tok)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def test_run_with_a_pretrained_teacher_folder(pretrained_dir, tmp_path):
    cfg = resolve_config("dart", "seqkd", "ci", sets=[("results_dir", str(tmp_path)),
                                                      ("teacher.pretrained", str(pretrained_dir)),
                                                      ("teacher_train.epochs", "0")])
    outcome = Pipeline(cfg).run()
    metrics = pd.read_parquet(outcome.path / "metrics.parquet")
    assert {"teacher", "predistill", "seqkd"} <= set(metrics["model"])
    assert outcome.manifest["config"]["teacher"]["pretrained"] == str(pretrained_dir)


def test_missing_pretrained_model_is_one_clear_error(tmp_path):
    cfg = resolve_config("dart", "seqkd", "ci", sets=[("results_dir", str(tmp_path / "r")),
                                                      ("teacher.pretrained", str(tmp_path / "no-such-model"))])
    with pytest.raises(HarnessError, match="save_pretrained"):
        Pipeline(cfg).run()


# ---------------------------------------------------------------- BART's <s>, as the reference tokenises it

def save_tiny_bart(folder):
    """A tiny BART saved like the hub's: the hub's tokenizer class (BartTokenizerFast, a byte-level BPE over a
    vocabulary written here: every byte, no merges) and the token ids and start/forced tokens of bart-large-xsum's
    config (decoder start ``</s>``, forced BOS ``<s>``)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import BartConfig, BartForConditionalGeneration, BartTokenizerFast

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    vocab["<mask>"] = len(vocab)
    tok = BartTokenizerFast(vocab=vocab, merges=[])
    config = BartConfig(vocab_size=len(vocab), d_model=16, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_position_embeddings=256, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2)
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def bart_dir(tmp_path_factory):
    return save_tiny_bart(tmp_path_factory.mktemp("bart"))


def test_bart_sources_and_targets_are_tokenised_as_the_reference_does(bart_dir):
    """`<s> … </s>` on both sides, truncation keeping both: transformers' own call with add_special_tokens=True
    and truncation to the cap, which the reference makes (dart/utils.py:167-171)."""
    from harness.data import template_prefix, tokenize_split
    from harness.lm import load_tokenizer
    from harness.task import Example

    tok = load_tokenizer(bart_dir)
    assert template_prefix(tok) == [tok.bos_token_id] == [0]
    examples = [Example("0", "Mars Hill College : joined : 1973", "It joined in 1973.", ("It joined in 1973.",)),
                Example("1", "a : b : c | d : e : " + "f" * 60, "A b c, d e " + "f" * 60 + ".", ("x",))]
    split = tokenize_split(examples, tok, 40, 24)
    for side, cap in ((split.sources, 40), (split.targets, 24)):
        texts = [e.source for e in examples] if side is split.sources else [e.target for e in examples]
        assert side == tok(texts, add_special_tokens=True, truncation=True, max_length=cap)["input_ids"]
        assert all(ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id for ids in side)
    assert (split.truncated_sources, split.truncated_targets) == (1, 1)


def test_a_trained_tokenizer_is_tokenised_as_before():
    """The embedded models' tokenizers have no template: no BOS, the text's ids and EOS (the cpu and ci numbers
    stay what they were)."""
    from harness.data import template_prefix, tokenize

    texts = [e.source for e in records.records_to_examples(twin.generate_split("train", 10, 0), "train", "x")]
    tok = train_tokenizer(texts, 300)
    assert template_prefix(tok) == []
    ids, cut = tokenize(tok, texts, 1000)
    assert cut == 0 and ids == [seq + [tok.eos_token_id] for seq in tok(texts, add_special_tokens=False)["input_ids"]]


def test_a_pseudo_label_takes_the_targets_bos():
    """The reference re-tokenises its pseudo-labels' text with the targets' template: `<s>` first whether or
    not the teacher emitted it, never twice."""
    from harness.data import as_target

    assert as_target([5, 6, 2], [0], 10, 2) == [0, 5, 6, 2]
    assert as_target([0, 5, 6, 2], [0], 10, 2) == [0, 5, 6, 2]
    assert as_target([0, 5, 6, 2], [0], 3, 2) == [0, 5, 6]
    assert as_target([5, 6, 2], [], 2, 2) == [5, 6]       # no template: as before
    assert as_target([], [], 4, 2) == [2]


def test_a_run_with_a_pretrained_bart_aligns_targets_and_pseudo_labels(bart_dir, tmp_path):
    """Through the pipeline: every training source, target and pseudo-label of a hub-style BART starts with
    `<s>` and the decoder starts from `</s>` (the config's decoder_start_token_id), as the reference trains it."""
    cfg = resolve_config("dart", "seqkd", "ci", sets=[("results_dir", str(tmp_path)),
                                                      ("teacher.pretrained", str(bart_dir)),
                                                      ("teacher.family", "bart"),
                                                      ("teacher_train.epochs", "0")])
    pipeline = Pipeline(cfg)
    outcome = pipeline.run()
    tokenized = pipeline.outputs[TOKENIZER]
    train = tokenized.splits["train"]
    bos, eos = tokenized.tokenizer.bos_token_id, tokenized.tokenizer.eos_token_id
    for rows in (train.sources, train.targets, pipeline.outputs[PSEUDO_LABELS]):
        assert all(ids[0] == bos for ids in rows)
        assert all(ids.count(bos) == 1 for ids in rows)
    assert all(ids[-1] == eos for ids in train.sources + train.targets)
    assert pipeline.outputs[TEACHER].start_id == eos
    assert {"teacher", "seqkd"} <= set(pd.read_parquet(outcome.path / "metrics.parquet")["model"])
