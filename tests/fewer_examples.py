"""A pytest plugin for ``make unit-pythons``: property tests run with at most 50 examples.

The other supported Pythons are checked for compatibility, not searched as hard for
counter-examples as the main run does (``-p tests.fewer_examples``). Tests keep their
other settings; without Hypothesis' settings attribute a test runs unchanged.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

MAX_EXAMPLES = 50


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        test = getattr(item, "obj", None)
        test = getattr(test, "__func__", test)  # a test method: its function holds the settings
        current = getattr(test, "_hypothesis_internal_use_settings", None)
        if isinstance(current, settings) and current.max_examples > MAX_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(current, max_examples=MAX_EXAMPLES)  # type: ignore[union-attr]
