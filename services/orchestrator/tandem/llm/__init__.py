"""The vLLM client side: HTTP client, replica pool, launcher, supervisor, token budget."""
