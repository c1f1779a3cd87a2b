"""The spaCy pipeline: installed by pyproject.toml, loaded once, offline."""

from __future__ import annotations

from tandem.rag.parser import load_parser


def test_the_pipeline_is_en_core_web_sm_3_8_with_its_pipes() -> None:
    nlp = load_parser()
    assert nlp.meta["lang"] == "en" and nlp.meta["version"] == "3.8.0"
    assert {"tok2vec", "tagger", "parser", "ner"} <= set(nlp.pipe_names)


def test_it_is_loaded_once() -> None:
    assert load_parser() is load_parser()


def test_it_tags_parses_and_finds_entities() -> None:
    doc = load_parser()("Paperless sends the invoice to Berlin on Monday.")
    assert doc[1].pos_ == "VERB" and doc[1].dep_ == "ROOT"
    assert {ent.label_ for ent in doc.ents} >= {"GPE", "DATE"}
