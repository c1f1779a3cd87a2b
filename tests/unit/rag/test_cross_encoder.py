"""The cross-encoder: the real int8 model (prepared by `tandem model prepare`) and the fake,
held to one contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.errors import BadInput
from tandem.rag.cross_encoder import CrossEncoder, FakeCrossEncoder, PairScorer
from tandem.rag.cross_encoder_prep import cross_encoder_path, is_prepared
from tandem.settings import get_settings

QUERY = "how do I change the OCR language"
OCR = (
    "PAPERLESS_OCR_LANGUAGE=<lang>: customize the language that paperless will attempt to use "
    "when parsing documents. It should be a 3-letter code such as deu+eng. Defaults to eng."
)
EMAIL = (
    "PAPERLESS_EMAIL_HOST=<str>: the SMTP server paperless sends email through, for password "
    "resets and notifications. Defaults to localhost."
)
BACKUP = "The document exporter writes every document and its metadata to a folder for backups."


@pytest.fixture(scope="module")
def model_folder() -> Path:
    """The prepared cross-encoder; a test that needs it fails (never skips) without it."""
    folder = cross_encoder_path(get_settings().models_dir)
    if not is_prepared(folder):
        pytest.fail(f"the cross-encoder is not prepared at {folder}: run `tandem model prepare`")
    return folder


@pytest.fixture(scope="module")
def real(model_folder: Path) -> CrossEncoder:
    return CrossEncoder(model_folder, threads=2)


@pytest.fixture(params=["real", "fake"])
def scorer(request: pytest.FixtureRequest) -> PairScorer:
    if request.param == "fake":
        return FakeCrossEncoder()
    encoder: CrossEncoder = request.getfixturevalue("real")
    return encoder


def test_the_passage_that_answers_scores_highest(scorer: PairScorer) -> None:
    scores = scorer.score(QUERY, [EMAIL, OCR, BACKUP])
    assert len(scores) == 3 and max(scores) == scores[1]


def test_one_score_per_passage_in_their_order(scorer: PairScorer) -> None:
    forward = scorer.score(QUERY, [OCR, EMAIL])
    backward = scorer.score(QUERY, [EMAIL, OCR])
    assert forward[0] > forward[1] and backward[1] > backward[0]
    assert scorer.score(QUERY, []) == []


def test_the_ocr_passage_scores_far_above_email(real: CrossEncoder) -> None:
    ocr, email = real.score(QUERY, [OCR, EMAIL])
    assert ocr > 0 > email and ocr - email > 8  # raw logits: ~3.5 and ~-11.3


def test_a_long_passage_is_cut_to_max_length(model_folder: Path) -> None:
    short = CrossEncoder(model_folder, threads=1, max_length=24)
    # what a 24-token pair keeps of OCR still mentions the OCR language; the tail is cut
    ocr, email = short.score(QUERY, [OCR + " filler" * 2000, EMAIL + " filler" * 2000])
    assert ocr > email


def test_openvino_ranks_as_onnxruntime_does(model_folder: Path, real: CrossEncoder) -> None:
    openvino = CrossEncoder(model_folder, threads=2, runtime="openvino")
    on_ov, on_ort = openvino.score(QUERY, [OCR, EMAIL]), real.score(QUERY, [OCR, EMAIL])
    assert on_ov == pytest.approx(on_ort, abs=0.5)


def test_a_folder_without_the_model_says_how_to_prepare_it(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="tandem model prepare"):
        CrossEncoder(tmp_path)


def test_the_fake_is_deterministic_and_records_calls() -> None:
    fake = FakeCrossEncoder()
    assert fake.score(QUERY, [OCR, EMAIL]) == fake.score(QUERY, [OCR, EMAIL])
    # "change" is the one query term (of change, OCR, language) the OCR passage lacks
    assert fake.score(QUERY, [OCR, EMAIL, QUERY]) == [pytest.approx(2 / 3), 0.0, 1.0]
    assert fake.calls[0] == (QUERY, [OCR, EMAIL])
