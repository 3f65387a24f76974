"""Serving: the family-doctor chat page with its safety layer (``mmed serve``) and a plain
OpenAI-compatible API over local models for evaluation (``python -m mmedkit.serve.openai_api``).

* ``app`` wires the FastAPI app: ``routes/`` (one router per concern: ``api``, ``page``, ``health``,
  ``completions``), ``deps`` (the app's ``Service``, the API key check, admission to the queue),
  ``http_errors``, ``middleware``;
* ``chat`` and ``streaming`` build answers (whole or as server-sent events); ``service`` holds what the
  routes share; ``settings`` the limits (``ServeConfig``); ``ui`` the page's files and strings;
* ``safety`` is the red-flag screen and its data, ``backends`` / ``engine`` / ``upstream`` where answers
  come from, ``queue`` the bounded admission queue, ``schemas`` the OpenAI-compatible bodies.
"""
