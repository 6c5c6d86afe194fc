"""The ETF codec implementations every codec test runs against (pure Python and the C core).

``CODECS`` is :func:`dist_proto.etf.available`: the compiled core is in it when it
was built (``make venv`` builds it); ``test_etf_core.py`` fails when it is missing.
"""

from __future__ import annotations

import pytest

from dist_proto import etf

CODECS = etf.available()

#: ``pytestmark = by_codec``: every test of the module takes a ``codec`` argument.
by_codec = pytest.mark.parametrize("codec", CODECS, ids=[c.name for c in CODECS])
