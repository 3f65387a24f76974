"""Serving: an OpenAI-compatible HTTP API over local models."""
