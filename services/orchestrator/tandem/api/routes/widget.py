"""`GET /widget/tandem.js` (the embeddable chat) and `GET /widget/demo` (a page showing it)."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

from fastapi import APIRouter, Response

from tandem.api.deps import ServicesDep

router = APIRouter(tags=["widget"])

# The demo page loads only its own script and talks only to this server.
DEMO_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DEMO_TITLE = "Kestrel support"
DEMO_GREETING = "Hi! I answer from the Kestrel docs. What can I help you with?"


@cache
def widget_file(name: str) -> str:
    """A file shipped in the `tandem.widget` package."""
    return resources.files("tandem.widget").joinpath(name).read_text(encoding="utf-8")


@router.get("/widget/tandem.js", include_in_schema=False, response_class=Response)
async def widget_script() -> Response:
    """The widget; any page may load it (the chat key and CORS decide who may chat)."""
    return Response(
        widget_file("tandem.js"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/widget/demo", include_in_schema=False, response_class=Response)
async def widget_demo(services: ServicesDep) -> Response:
    """A page with the widget, using the configured browser-safe chat key (none when open)."""
    values = {
        "api_base": "",  # same origin
        "key": services.settings.widget.key or "",
        "title": DEMO_TITLE,
        "greeting": DEMO_GREETING,
    }
    page = widget_file("demo.html")
    for name, value in values.items():
        page = page.replace("{" + name + "}", html.escape(value, quote=True))
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": DEMO_CSP, "X-Content-Type-Options": "nosniff"},
    )
