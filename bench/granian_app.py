"""convostack's ASGI app for another ASGI server (bench/targets.py's granian launcher):
the configuration from CONVOSTACK_* variables, as `convostack serve` reads them."""

from __future__ import annotations

from convostack.app import create_app
from convostack.config import load_config

app = create_app(load_config())
