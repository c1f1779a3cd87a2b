"""vLLM's OpenAI server with Tandem's grouped CPU LoRA kernels: `python -m tandem.llm.vllm_entry`.

The kernels are installed at import, not under `__main__`: vLLM's CPU backend starts its
engine and worker with multiprocessing's spawn, which re-imports this module (as
`__mp_main__`) in each child, so every process that runs the model gets them.
"""

from __future__ import annotations

from tandem.llm.cpu_lora import install

install()

if __name__ == "__main__":
    from vllm.entrypoints.launchers.api_server.entry import main

    main()  # type: ignore[no-untyped-call]
