"""Tandem: a self-hosted support assistant (vLLM + LoRA adapter + Qdrant retrieval)."""

__version__ = "0.1.0"
