"""``python -m mmedkit`` runs the ``mmed`` command line."""

from mmedkit.cli import app

app(prog_name="mmed")
