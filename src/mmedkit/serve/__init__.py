"""Serving: the family-doctor chat page with its safety layer (``mmed serve``) and a plain
OpenAI-compatible API over local models for evaluation (``python -m mmedkit.serve.openai_api``)."""
