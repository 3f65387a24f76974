"""Functions of the chat page's script run by Node.js (skipped without it): what the page sends."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from mmedkit.serve.ui import STATIC

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _function(name: str) -> str:
    """The source of the top-level function ``name`` in app.js."""
    source = (STATIC / "app.js").read_text(encoding="utf-8")
    match = re.search(rf"^function {name}\(.*?^}}$", source, re.S | re.M)
    assert match, f"no function {name} in app.js"
    return match.group(0)


def test_clipping_a_message_never_cuts_an_emoji_in_half() -> None:
    script = _function("clip") + "\nconsole.log(JSON.stringify([clip('ab😀cd', 3), clip('ab😀', 2), clip('abc', 9)]));"
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == ["ab😀", "ab", "abc"]  # code points, as the server counts: len("ab😀") == 3
