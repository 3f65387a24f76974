#!/usr/bin/env bash
# Installs what tests/test_serve_browser.py drives: Debian's Chromium (plus CJK fonts, so Chinese
# and Japanese render in the screenshots). Needs root, as CI has. The Playwright Python package
# comes with the test extra (pip install -e '.[test]'); when a venv is given or found, it is
# installed there too if missing. Without Chromium the browser test is skipped, saying why.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi
chromium --version
PY="${PYTHON:-.venv/bin/python}"
if [ -x "$PY" ] && ! "$PY" -c "import playwright" 2>/dev/null; then
  "$PY" -m pip install --quiet "playwright>=1.40"
fi
