"""A fake vLLM replica played at the HTTP transport, and small well-formed adapter folders."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from safetensors.numpy import save_file

from tandem.llm.client import VllmClient
from tandem.settings import BASE_MODEL_ID

HIDDEN = 16


def write_adapter(folder: Path, rank: int = 4, **config: Any) -> Path:
    """A small, well-formed LoRA folder (q_proj/v_proj of two layers)."""
    folder.mkdir(parents=True)
    base = {
        "peft_type": "LORA",
        "base_model_name_or_path": BASE_MODEL_ID,
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["q_proj", "v_proj"],
        "bias": "none",
    }
    (folder / "adapter_config.json").write_text(json.dumps({**base, **config}))
    tensors = {}
    for layer in range(2):
        for module in ("q_proj", "v_proj"):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = np.full((rank, HIDDEN), 0.01, dtype=np.float32)
            tensors[f"{prefix}.lora_B.weight"] = np.full((HIDDEN, rank), 0.02, dtype=np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


class FakeVllm:
    """One replica: /health, /v1/models, runtime LoRA load/unload, chat completions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loaded: set[str] = set()
        self.down = False
        self.refuse: set[str] = set()  # adapter names whose load fails (HTTP 500)
        self.models_used: list[str] = []
        self.unloads: list[str] = []
        self.delay_s = 0.0  # how long loads and chats take (lets two swaps overlap for real)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/health":
            return httpx.Response(200)
        if path == "/v1/models":
            names = [BASE_MODEL_ID, *sorted(self.loaded)]
            return _json(200, {"data": [{"id": n} for n in names]})
        if path == "/v1/load_lora_adapter":
            await asyncio.sleep(self.delay_s)
            return self._load(body["lora_name"])
        if path == "/v1/unload_lora_adapter":
            if body["lora_name"] not in self.loaded:
                return _json(404, {"error": {"message": "cannot be found"}})
            self.loaded.discard(body["lora_name"])
            self.unloads.append(body["lora_name"])
            return httpx.Response(200, text="removed")
        await asyncio.sleep(self.delay_s)
        return self._chat(body)

    def _load(self, name: str) -> httpx.Response:
        if name in self.refuse:
            return _json(500, {"error": {"message": f"could not load {name}: shape mismatch"}})
        if name in self.loaded:
            return _json(400, {"error": {"message": f"{name} has already been loaded"}})
        self.loaded.add(name)
        return httpx.Response(200, text="added")

    def _chat(self, body: dict[str, Any]) -> httpx.Response:
        model = body["model"]
        if model != BASE_MODEL_ID and model not in self.loaded:
            return _json(404, {"error": {"message": f"The model `{model}` does not exist."}})
        self.models_used.append(model)
        usage = {"prompt_tokens": 5, "completion_tokens": 2}
        if body.get("stream"):
            chunks = [
                {"choices": [{"delta": {"content": f"answer from {model}"}}]},
                {"choices": [], "usage": usage},
            ]
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        message = {"role": "assistant", "content": f"answer from {model}"}
        choice = {"message": message, "finish_reason": "stop"}
        return _json(200, {"choices": [choice], "usage": usage})

    def client(self) -> VllmClient:
        return VllmClient(self.url, timeout_s=5, transport=httpx.MockTransport(self.handle))
