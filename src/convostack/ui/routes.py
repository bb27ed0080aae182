"""Serving the UI's files: read from the package once, at first request, and answered
from memory with their type and a policy that lets the page load nothing from elsewhere."""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from convostack.errors import NotFoundError
from convostack.routing import Route

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only our own files and our own API: no inline script, no third-party origin.
HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # The files change with the package's version; a reload after an upgrade fetches them.
    "cache-control": "no-cache",
}


@functools.cache
def files() -> dict[str, tuple[bytes, str]]:
    """Each file of the static folder by name, with its content type. A fixed table,
    so a request can name nothing outside it (no path ever reaches the file system)."""
    folder = resources.files(__name__.rpartition(".")[0]).joinpath("static")
    table = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in TYPES:
            table[entry.name] = (entry.read_bytes(), TYPES[suffix])
    return table


async def ui_file(request: Request) -> Response:
    name: str = request.path_params.get("name", "index.html")
    found = files().get(name)
    if found is None:
        raise NotFoundError(f"No UI file named '{name[:100]}'.")
    body, media_type = found
    return Response(body, media_type=media_type, headers=HEADERS)


# The page is /ui itself and names its files relatively (`ui/app.js`), so it also works
# under a proxy's path prefix.
routes = [
    Route("/ui", ui_file, ("GET",)),
    Route("/ui/{name}", ui_file, ("GET",)),
]
