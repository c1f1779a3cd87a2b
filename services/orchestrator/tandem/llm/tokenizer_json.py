"""A model's `tokenizer.json` read by the `tokenizers` library: no transformers, so no torch."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer


def load_tokenizer_json(path: Path) -> Tokenizer:
    """The tokenizer in `path`, with any truncation and padding the file carries cleared.

    A file may carry its own (all-MiniLM-L6-v2's cuts at 128 tokens and pads to 128); each
    user of a tokenizer sets what it needs.
    """
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
