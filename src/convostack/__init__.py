"""convostack: an OpenAI-compatible server centred on stateful conversations."""

__version__ = "0.1.0"
