"""The OpenAI-compatible gateway: :func:`create_app` builds the ASGI app from a config."""

from turnout.gateway.app import create_app

__all__ = ["create_app"]
