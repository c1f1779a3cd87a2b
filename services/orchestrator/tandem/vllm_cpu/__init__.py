"""Code that runs inside the vLLM process: the entry point and its CPU adjustments."""
