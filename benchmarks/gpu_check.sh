#!/usr/bin/env bash
# GPU check for issue 20 (the first GPU run must not fail): hf on CUDA, FSDP pretrain with a stop and a
# resume through accelerate launch, bf16 choice, vLLM when installed; each item PASS / FAIL / SKIP.
# One GPU, under 5 minutes, a tiny model built on the spot. Without a GPU every item is skipped.
#   benchmarks/gpu_check.sh [--dry-cpu] [--keep DIR]
# Needs the train extras (accelerate); PYTHON defaults to .venv/bin/python, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
exec "$PYTHON" benchmarks/gpu_check.py "$@"
