"""ASGI entry point for production servers: `uvicorn tandem.api.asgi:app`.

Replicas run this against external services (`TANDEM_VLLM__URL(S)`, `TANDEM_QDRANT__URL`).
"""

from tandem.api.app import create_app

app = create_app(freeze=True)
