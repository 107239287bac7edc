"""Language-model adapters: one protocol (encode once; score, extend and sample target
prefixes) behind which the step engine sees encoder-decoder and decoder-only models alike."""

from .base import Encoded, Prefix, generate_exactly, generation_config, sequences_to_prefix
from .build import (DECODER_ONLY_FAMILIES, FAMILIES, SPECIAL_TOKENS, build_model, count_parameters, device_type,
                    embedding_parameters, language_model,
                    layers_to_copy, layers_to_supervise, load_model, load_tokenizer, make_student, resolve_device,
                    train_tokenizer)
from .causal import CausalLM
from .seq2seq import Seq2SeqLM

__all__ = ["CausalLM", "DECODER_ONLY_FAMILIES", "Encoded", "FAMILIES", "Prefix", "SPECIAL_TOKENS", "Seq2SeqLM",
           "build_model", "count_parameters", "device_type", "embedding_parameters", "generate_exactly",
           "generation_config",
           "language_model", "layers_to_copy",
           "layers_to_supervise", "load_model", "load_tokenizer", "make_student", "resolve_device",
           "sequences_to_prefix", "train_tokenizer"]
