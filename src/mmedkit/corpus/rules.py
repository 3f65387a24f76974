"""Filters made of rules, in the manner of datatrove's ``FineWebQualityFilter``.

A rule is one short method that returns ``True`` (the document passes) or ``(False, "reason_key")``
(snake_case). :class:`RuleFilter` runs its rules in order and drops a document at the first one it
breaks; datatrove's ``BaseFilter`` then counts ``dropped_<reason_key>`` in the step's stats and writes the
document, with ``metadata["filter_reason"]``, to the exclusion writer.
"""

from __future__ import annotations

from typing import Any

from datatrove.pipeline.filters.base_filter import BaseFilter

Verdict = bool | tuple[bool, str]


def drop_if(broken: bool, reason: str) -> Verdict:
    """``(False, reason)`` when a rule is broken, else ``True``."""
    return (False, reason) if broken else True


class RuleFilter(BaseFilter):
    """A datatrove filter whose decision is the first of its :attr:`rules` that drops the document."""

    rules: tuple[str, ...] = ()
    """Names of the rule methods, in the order they run (cheap and common ones first)."""

    def apply_rules(self, *args: Any) -> Verdict:
        """Run the rules on ``args``: the verdict of the first that drops, else ``True``."""
        for name in self.rules:
            verdict = getattr(self, name)(*args)
            if verdict is not True:
                return verdict
        return True
