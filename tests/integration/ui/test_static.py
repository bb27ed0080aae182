"""The web UI's files: served from the package at /ui, with their types and a policy
that keeps the page to its own origin; nothing but those files can be named."""

from __future__ import annotations

import re

import httpx2
import pytest


def test_the_page_names_only_files_that_are_served(http: httpx2.Client) -> None:
    page = http.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    names = re.findall(r'(?:src|href)="ui/([^"]+)"', page.text)
    assert sorted(names) == ["app.js", "style.css"]
    types = {"app.js": "text/javascript", "style.css": "text/css"}
    for name in names:
        response = http.get(f"/ui/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(types[name])
    # Everything offline: no file loads anything from another origin.
    for name in ("", "/app.js", "/style.css"):
        assert "http://" not in http.get(f"/ui{name}").text.replace("http://127.0.0.1", "")
        assert "https://" not in http.get(f"/ui{name}").text


@pytest.mark.parametrize("path", ["/ui/nothing.js", "/ui/..%2fapp.py", "/ui/routes.py"])
def test_other_names_are_404_in_the_openai_body(http: httpx2.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
