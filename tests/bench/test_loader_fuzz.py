"""Fuzzing the benchmark loader (hypothesis): any file gives items or a :class:`DataError` naming the file and
line, never a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed: pip install -e '.[test]'")
st = pytest.importorskip("hypothesis.strategies")

from mmedkit.bench.loader import LoadReport, load_benchmark  # noqa: E402
from mmedkit.errors import DataError  # noqa: E402

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)
LETTERS = st.sampled_from(["A", "B", "C", "a", " b", "", "AB"])
RECORD = st.fixed_dictionaries(
    {"question": SCALARS, "options": st.dictionaries(LETTERS, SCALARS, max_size=4) | JSON,
     "answer_idx": LETTERS | st.lists(LETTERS, max_size=3) | JSON},
    optional={"id": SCALARS, "rationale": JSON, "human_checked": JSON, "meta_info": JSON, "n_answers": JSON,
              "multi_answer": JSON, "subject": JSON})
LINE = (RECORD.map(lambda r: json.dumps(r).encode()) | JSON.map(lambda v: json.dumps(v).encode())
        | st.binary(max_size=60))
SETTINGS = hypothesis.settings(max_examples=150, deadline=None, derandomize=True,
                               suppress_health_check=[hypothesis.HealthCheck.too_slow])


def _load(lines: list[bytes], skip_invalid: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Test" / "English.jsonl"
        path.parent.mkdir()
        path.write_bytes(b"\n".join(lines) + b"\n")
        try:
            items = load_benchmark(tmp, langs="en", skip_invalid=skip_invalid, report=LoadReport())
        except DataError as exc:
            where = str(exc)
            assert where.startswith(f"{path}:") or where.startswith("no items loaded"), where
        else:
            assert items and all(it.options and it.answer <= set(it.options) for it in items)


@SETTINGS
@hypothesis.given(st.lists(LINE, min_size=1, max_size=4))
def test_any_file_loads_or_names_the_place(lines: list[bytes]) -> None:
    _load(lines, skip_invalid=False)


@SETTINGS
@hypothesis.given(st.lists(LINE, min_size=1, max_size=4))
def test_with_skip_invalid_any_file_loads_what_is_valid(lines: list[bytes]) -> None:
    _load(lines, skip_invalid=True)
