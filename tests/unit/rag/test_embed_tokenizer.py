"""The embedder's own tokenizer gives transformers' encodings, and keeps torch out of serving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import PAPERLESS

from tandem.rag.embed_model import packaged_model_path
from tandem.rag.onnx_embedder import INPUTS, EmbedTokenizer, check_mean_pooling
from tandem.rag.prompt import SYSTEM_PROMPT

ROOT = Path(__file__).resolve().parents[3]
QUERY_SHAPES = (16, 24, 32)


def texts() -> list[str]:
    """Questions, a long page (cut at max_length), accents, CJK, emoji, markup, an empty one."""
    page = (PAPERLESS / "v3.0.5" / "configuration.md").read_text()
    return [
        "How do I change the OCR language?",
        "PAPERLESS_OCR_LANGUAGES=deu+eng in docker-compose.env",
        SYSTEM_PROMPT,
        page[:20_000],
        page[5_000:5_400],
        "Ünïcödé façade — naïve café; 東京の書類をスキャン 📄✅",
        "<b>bold</b> [link](https://docs.paperless-ngx.com/) `code` ![x](y.png)",
        "",
        " ".join(["word"] * 20),  # 22 tokens: the 24-token shape
        " ".join(["word"] * 40),  # longer than every static query shape
    ]


@pytest.fixture(scope="module")
def reference() -> object:
    """transformers' AutoTokenizer for the same model: what the embedder used before."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(packaged_model_path()))


@pytest.fixture(scope="module")
def ours() -> EmbedTokenizer:
    model = packaged_model_path()
    return EmbedTokenizer(model, check_mean_pooling(model), QUERY_SHAPES)


def test_batches_match_transformers(reference: object, ours: EmbedTokenizer) -> None:
    model = packaged_model_path()
    expected = reference(  # type: ignore[operator]
        texts(),
        padding=True,
        truncation=True,
        max_length=check_mean_pooling(model),
        return_tensors="np",
    )
    got = ours.batch_inputs(texts())
    for name in INPUTS:
        assert got[name].dtype == np.int64
        np.testing.assert_array_equal(got[name], expected[name].astype(np.int64), err_msg=name)


def test_queries_on_the_shortest_static_shape_match_transformers(
    reference: object, ours: EmbedTokenizer
) -> None:
    """Each query padded to the shortest shape that holds it, as transformers pads to a
    length; a query longer than every shape gets None (the dynamic model takes it whole)."""
    on_shape = dict.fromkeys(QUERY_SHAPES, 0)
    for text in texts():
        length = len(reference([text], truncation=False)["input_ids"][0])  # type: ignore[operator]
        got = ours.query_inputs(text)
        shape = next((n for n in QUERY_SHAPES if n >= length), None)
        if shape is None:
            assert got is None
            continue
        expected = reference(  # type: ignore[operator]
            [text], padding="max_length", truncation=False, max_length=shape, return_tensors="np"
        )
        assert got is not None
        on_shape[shape] += 1
        for name in INPUTS:
            np.testing.assert_array_equal(got[name], expected[name].astype(np.int64), err_msg=name)
    assert on_shape[16] >= 2 and on_shape[24] >= 1  # the texts reach more than one shape
    assert ours.query_inputs(" ".join(["word"] * 40)) is None


def test_counts_match_transformers(reference: object, ours: EmbedTokenizer) -> None:
    for text in texts():
        expected = reference.encode(text, add_special_tokens=True, truncation=False)  # type: ignore[attr-defined]
        assert ours.count(text) == len(expected)


def test_the_serving_embedder_imports_neither_transformers_nor_torch() -> None:
    """In a fresh interpreter, with the ONNX export cached (created here first if need be)."""
    code = (
        "import sys\n"
        "from tandem.rag.embedder import build_embedder\n"
        "from tandem.settings import Settings\n"
        "embedder = build_embedder(Settings(), 'queries')\n"
        "assert len(embedder.embed_query('How do I add a mail rule?')) == embedder.dim\n"
        "assert len(embedder.embed_documents(['a page', 'another page'])) == 2\n"
        "print(sorted(m for m in ('torch', 'transformers', 'triton') if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "services" / "orchestrator"), str(ROOT)]),
        "HF_HUB_OFFLINE": "1",
    }
    # the first run may export the model to ONNX (that imports torch); the second is a start
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"
