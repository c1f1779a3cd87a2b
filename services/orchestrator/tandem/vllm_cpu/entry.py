"""vLLM's OpenAI server with Tandem's CPU adjustments: `python -m tandem.vllm_cpu.entry`.

The adjustments (`tandem/vllm_cpu/tuning.py`: grouped CPU LoRA kernels, a short busy wait,
seeded requests that survive chunked prefill) are applied at import, not under `__main__`:
vLLM's CPU backend starts its engine and worker with multiprocessing's spawn, which re-imports
this module (as `__mp_main__`) in each child, so every process vLLM runs gets them. The
launcher chooses the first two through the environment; the third is applied in the spawned
children only, where the model runs.
"""

from __future__ import annotations

from tandem.vllm_cpu.tuning import apply

apply(child=__name__ != "__main__")

if __name__ == "__main__":
    from vllm.entrypoints.launchers.api_server.entry import main

    main()  # type: ignore[no-untyped-call]
