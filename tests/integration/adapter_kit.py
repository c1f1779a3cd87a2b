"""Real adapter versions for the swap tests and bench: the project's trained ones when present,
else two tiny ones trained here (peft LoRA r=8 on q_proj/v_proj, a few steps on the base model).
"""

from __future__ import annotations

import atexit
import itertools
import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tandem.adapters.check import validate_adapter_folder
from tandem.errors import TandemError
from tandem.settings import PROJECT_ROOT, Settings, get_settings

SLOT = "support"
EXAMPLES = [
    ("How do I export my data?", "Open Settings > Export and pick CSV.\nSources: [1]"),
    ("How do I reset my password?", "Use the Forgot password link.\nSources: [1]"),
]
_cache: Path | None = None


def train_tiny_adapter(out: Path, seed: int, steps: int = 3) -> Path:
    """A real (if barely trained) LoRA adapter saved as safetensors into `out`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = get_settings()
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(settings.model_path)
    base = AutoModelForCausalLM.from_pretrained(settings.model_path, dtype=torch.float32)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["q_proj", "v_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    question, answer = EXAMPLES[seed % len(EXAMPLES)]
    chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    batch = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False), return_tensors="pt")
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=2e-3)
    for _ in range(steps):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(out), safe_serialization=True)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = settings.model.name  # the served name, not the path
    config_path.write_text(json.dumps(config, indent=2))
    (out / "README.md").unlink(missing_ok=True)
    return out


def _project_versions(settings: Settings) -> list[Path] | None:
    """adapters/support/v1 and v2 when both are trained and valid."""
    folders = [PROJECT_ROOT / "adapters" / SLOT / v for v in ("v1", "v2")]
    try:
        for folder in folders:
            validate_adapter_folder(folder, settings.model.name, settings.vllm.max_lora_rank)
    except TandemError:
        return None
    return folders


def adapter_versions() -> Path:
    """A cached adapters root holding `support/v1` and `support/v2` (built once a process)."""
    global _cache
    if _cache is None:
        root = Path(tempfile.mkdtemp(prefix="tandem-adapters-"))
        atexit.register(shutil.rmtree, root, True)
        (root / SLOT).mkdir()
        project = _project_versions(get_settings())
        for n in (1, 2):
            target = root / SLOT / f"v{n}"
            if project:
                shutil.copytree(project[n - 1], target)
            else:
                train_tiny_adapter(target, seed=n)
        _cache = root
    return _cache


def copy_adapters(dest: Path, slot: str = SLOT) -> Path:
    """A fresh, writable adapters root with `slot`/v1 and v2 (tests add broken versions).

    Tests use their own slot name, so the served names (`<slot>-v1`) never collide with
    the project's adapters on a vLLM that other tests share.
    """
    shutil.copytree(adapter_versions() / SLOT, dest / slot)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@dataclass
class ChatOutcome:
    """One streamed chat as the client saw it (times are time.monotonic())."""

    worker: int
    started: float
    ended: float = 0.0
    first_token: float | None = None
    adapter: str | None = None  # named in the `sources` event
    done_adapter: str | None = None  # named in the `done` event
    error: str | None = None


def _read_stream(response: httpx.Response, outcome: ChatOutcome) -> None:
    event = ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = json.loads(line[5:])
            if event == "sources":
                outcome.adapter = data["adapter"]
            elif event == "delta" and outcome.first_token is None:
                outcome.first_token = time.monotonic()
            elif event == "done":
                outcome.done_adapter = data["adapter"]
            elif event == "error":
                outcome.error = json.dumps(data)


def stream_chat(client: httpx.Client, worker: int, n: int) -> ChatOutcome:
    """One streamed chat (its own conversation), as the client saw it."""
    question = f"How do I export my data? (conversation {worker}-{n})"
    body = {
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "retrieval": False,
        "conversation_id": f"load-{worker}-{n}",
    }
    outcome = ChatOutcome(worker, time.monotonic())
    try:
        with client.stream("POST", "/v1/chat", json=body) as response:
            if response.status_code != 200:
                outcome.error = f"HTTP {response.status_code}: {response.read()[:300]!r}"
            else:
                _read_stream(response, outcome)
    except httpx.HTTPError as error:
        outcome.error = repr(error)
    if outcome.error is None and outcome.done_adapter is None:
        outcome.error = "the stream ended without a done event"
    outcome.ended = time.monotonic()
    return outcome


class ChatLoad:
    """`workers` threads streaming chats back to back (each its own conversation) until stopped."""

    def __init__(self, url: str, key: str, workers: int = 3) -> None:
        self.url, self.key, self.workers = url, key, workers
        self.outcomes: list[ChatOutcome] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(w,)) for w in range(workers)]

    def __enter__(self) -> ChatLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=300)

    def _run(self, worker: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=300) as client:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                self.outcomes.append(stream_chat(client, worker, n))

    def wait_for(self, label: str, since: float, timeout_s: float = 180) -> ChatOutcome:
        """The first answer by `label` that started after `since`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for outcome in list(self.outcomes):
                if outcome.started >= since and outcome.done_adapter == label:
                    return outcome
            time.sleep(0.05)
        raise AssertionError(f"no answer by {label} within {timeout_s} s")
