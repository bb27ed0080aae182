"""The web UI at /ui: hand-written static files shipped inside the package (no build
step, no CDN), served by the API's own process. Loading them needs no API key; every
call the page then makes to /v1 sends the key the user typed (auth.py checks those)."""
