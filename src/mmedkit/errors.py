"""The errors every stage raises for bad input, each naming where the problem is.

* :class:`DataError` — a bad data record (benchmark item, corpus record, training shard): file, line, field.
* :class:`ConfigError` — a bad setting in a config file, recipe or ``--set`` override: ``file:line: key: message``.

Both are ``ValueError`` subclasses, so a caller that only knows "bad input" can catch ``ValueError``;
the command line prints them with :func:`mmedkit.clikit.fail` as one line and exits with status 2.
"""

from __future__ import annotations


class MmedError(ValueError):
    """Bad input that the user can fix; the message says where."""


class DataError(MmedError):
    """Bad data, with the place it was found (file, line, field)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field!r})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ConfigError(MmedError):
    """A bad configuration value, with where it came from (``file:line: key: message``)."""
