from __future__ import annotations

from tandem.rag.sparse import document_vector, query_vector, term_index, tokenize


def test_tokenize_stems_drops_stopwords_and_keeps_identifiers() -> None:
    terms = tokenize("How do I configure PAPERLESS_DB_OPTIONS for the databases?")
    assert "paperless_db_options" in terms
    assert {"configur", "databas", "paperless", "db", "option"} <= set(terms)
    assert not {"how", "do", "i", "the", "for"} & set(terms)


def test_term_index_is_stable_and_31_bit() -> None:
    assert term_index("invoice") == term_index("invoice")
    assert 0 <= term_index("invoice") < 2**31


def test_document_vector_saturates_term_frequency() -> None:
    once = document_vector("invoice")
    many = document_vector("invoice invoice invoice invoice invoice invoice")
    assert once.indices == many.indices
    assert many.values[0] > once.values[0]
    assert many.values[0] < 6 * once.values[0]  # BM25 saturation, not raw counts


def test_longer_documents_weigh_a_term_less() -> None:
    short = document_vector("refund policy")
    long = document_vector("refund policy " + " ".join(f"word{i}" for i in range(300)))
    index = term_index("refund")
    assert short.values[short.indices.index(index)] > long.values[long.indices.index(index)]


def test_query_vector_has_each_term_once_with_weight_one() -> None:
    vector = query_vector("export export CSV")
    assert len(vector.indices) == 2 and vector.values == [1.0, 1.0]
    assert query_vector("the a of").indices == []
