"""Retrieval: embedder, sparse BM25 vectors, the Qdrant store, the retriever, the prompt."""
