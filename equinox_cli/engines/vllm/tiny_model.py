"""A tiny random-weight Llama with a locally trained tokenizer: vLLM runs anywhere, no downloads.

Needs the `vllm` extra (torch, transformers, tokenizers). Deterministic under the seed: the same
tokenizer and the same weights every time. Built once into a cache folder and reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_VERSION = "tiny-llama-v2"
VOCAB_SIZE = 512
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "had",
    "by",
    "hot",
    "word",
    "but",
    "what",
    "some",
    "we",
    "can",
    "out",
    "other",
    "were",
    "all",
    "there",
    "when",
    "up",
    "use",
    "your",
    "how",
    "said",
    "an",
    "each",
    "she",
    "which",
    "do",
    "their",
    "time",
    "if",
    "will",
    "way",
    "about",
    "many",
    "then",
    "them",
    "write",
    "would",
    "like",
    "so",
    "these",
    "her",
    "long",
    "make",
    "thing",
    "see",
    "him",
    "two",
    "has",
    "look",
    "more",
    "day",
    "could",
    "go",
    "come",
    "did",
    "number",
    "sound",
    "no",
    "most",
    "people",
    "code",
    "model",
    "token",
    "server",
    "request",
    "client",
    "fair",
    "share",
    "queue",
    "latency",
    "memory",
    "cache",
    "step",
    "batch",
]


def default_dir() -> Path:
    root = Path(os.environ.get("EQUINOX_CACHE", Path.home() / ".cache" / "equinox"))
    return root / TINY_VERSION


def _corpus(seed: int, lines: int = 2000) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(lines)]


def _tokenizer(folder: Path, seed: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_corpus(seed), trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "model_max_length": 4096,
        "chat_template": "{% for m in messages %}{{ m['content'] }}\n{% endfor %}",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
    )


def _weights(folder: Path, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=128,  # head_dim 64: the smallest vLLM's CPU attention kernels accept
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype="float32",
    )
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)


def build_tiny_model(folder: Path | None = None, seed: int = 0) -> Path:
    """The model folder, built (atomically) if it is not there yet."""
    from equinox_cli.core.files import atomic_folder

    target = folder or default_dir()
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    with atomic_folder(target) as tmp:
        _tokenizer(tmp, seed)
        _weights(tmp, seed)
    return target
