"""The re-packed option format of some redistributions (Apollo's ``metadata/``): options in one string.

``option`` is ``"(A) text\\n(B) text\\n..."`` and the answer is written ``"(B)"``.
"""

from __future__ import annotations

import re

from mmedkit.errors import DataError

_MARKER = re.compile(r"^\(([A-Z])\)\s?(.*)$")


def parse_packed_options(text: str, *, path: str | None, line: int | None, field: str = "option",
                         strip_period: bool = False) -> dict[str, str]:
    """``"(A) x\\n(B) y"`` -> ``{"A": "x", "B": "y"}``.

    A line that does not start with a ``(X)`` marker continues the previous option. Letters must run
    A, B, C, ... in order; text before ``(A)``, a skipped or repeated letter, or an empty option raises
    :class:`DataError`. ``strip_period`` removes one trailing ``.`` per option (Apollo's re-packing
    appends one to every option).
    """
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"expected a non-empty string of '(A) ...' lines, got {text!r:.80}",
                        path=path, line=line, field=field)
    options: dict[str, list[str]] = {}
    for raw in text.strip().splitlines():
        m = _MARKER.match(raw.strip())
        if m:
            letter = m.group(1)
            expected = chr(ord("A") + len(options))
            if letter != expected:
                raise DataError(f"option ({letter}) where ({expected}) was expected", path=path, line=line,
                                field=field)
            options[letter] = [m.group(2).strip()]
        elif not options:
            raise DataError(f"text before the first '(A)' option: {raw.strip()!r:.60}", path=path, line=line,
                            field=field)
        else:
            options[next(reversed(options))].append(raw.strip())
    if len(options) < 2:
        raise DataError("expected at least two option lines '(A) text'", path=path, line=line, field=field)
    out = {k: "\n".join(p for p in parts if p) for k, parts in options.items()}
    if strip_period:
        out = {k: v[:-1].rstrip() if v.endswith(".") else v for k, v in out.items()}
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise DataError(f"empty option text for ({empty[0]})", path=path, line=line, field=field)
    return out


def parse_packed_answer(value: object, options: dict[str, str], *, path: str | None, line: int | None,
                        field: str = "anwer") -> str:
    """``"(B)"`` (or ``"B"``) -> ``"B"``, checked to be one of ``options``."""
    text = value.strip() if isinstance(value, str) else ""
    m = re.fullmatch(r"\(?([A-Za-z])\)?", text)
    if not m:
        raise DataError(f"expected an answer like '(B)', got {value!r:.40}", path=path, line=line, field=field)
    letter = m.group(1).upper()
    if letter not in options:
        raise DataError(f"answer ({letter}) is not among the options {','.join(options)}", path=path, line=line,
                        field=field)
    return letter
