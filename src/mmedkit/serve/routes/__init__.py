"""The service's routers, one per concern: ``api`` (the OpenAI-compatible ``/v1``), ``page`` (the chat page and
its settings), ``health`` (``/healthz``) and ``completions`` (legacy ``/v1/completions`` of the plain server)."""
