"""The page's emergency alert: phone numbers of every language's emergency answer become tel: links
(the page's function run by Node.js; skipped without it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.ui import STATIC

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _function(name: str) -> str:
    source = (STATIC / "app.js").read_text(encoding="utf-8")
    match = re.search(rf"^function {name}\(.*?^}}$", source, re.S | re.M)
    assert match, f"no function {name} in app.js"
    return match.group(0)


def test_emergency_numbers_become_tel_links(policy: SafetyPolicy) -> None:
    texts = {lang: policy.emergency_message("suicide", lang) for lang in policy.languages}
    script = (_function("phoneParts") + f"\nconst texts = {json.dumps(texts)};\nconsole.log(JSON.stringify("
              "Object.fromEntries(Object.entries(texts).map(([k, v]) => [k, phoneParts(v)]))));")
    run = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=30, check=True)
    out = json.loads(run.stdout)
    for lang, parts in out.items():
        assert "".join(p["text"] for p in parts) == texts[lang]  # nothing lost or added
    tels = {lang: [p["tel"] for p in parts if "tel" in p] for lang, parts in out.items()}
    assert {"911", "999", "112", "988", "116123"} <= set(tels["en"])
    assert {"15", "112", "3114"} <= set(tels["fr"])
    assert {"103", "112", "88002000122"} <= set(tels["ru"])
    assert {"120", "12356"} <= set(tels["zh"])
    assert {"119", "%237119", "0120279338"} <= set(tels["ja"])
    assert {"112", "024"} <= set(tels["es"])
    assert "+74959895050" in tels["ru"] and "88002000122" in tels["ru"]
    assert all(re.fullmatch(r"(?:%23|\+)?\d{2,17}", t) for ts in tels.values() for t in ts)
    assert "24" not in tels["ja"] + tels["fr"] + tels["es"]  # "24 h/24", "24時間": hours, not numbers
