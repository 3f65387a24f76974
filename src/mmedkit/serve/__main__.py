"""``python -m mmedkit.serve``: the same as ``mmed serve``."""

from mmedkit.serve.cli import app

app(prog_name="python -m mmedkit.serve")
