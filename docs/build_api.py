"""Build the API reference from the docstrings with pdoc (``make docs``).

``python docs/build_api.py [OUTPUT_DIR]`` (default ``docs/api``) documents the public API
(docs/api.md): the three package roots, whose ``__all__`` lists what is public, and
``python_actors.testing``. It exits 1, listing them, if pdoc warned about anything.
"""

from __future__ import annotations

import importlib
import sys
import typing
import warnings
from pathlib import Path

import pdoc
import pdoc.render

PUBLIC_MODULES = ["dist_proto", "python_actors", "bridge", "python_actors.testing"]


def _resolve_named_tuple_fields() -> None:
    """Give the ``__new__`` of public NamedTuples real types instead of strings.

    ``from __future__ import annotations`` leaves NamedTuple field types as strings, and
    the ``__new__`` that ``collections.namedtuple`` generates lives in no module, so pdoc
    cannot resolve them; ``typing.get_type_hints`` on the class can.
    """
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if isinstance(obj, type) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
                obj.__new__.__annotations__ = typing.get_type_hints(obj)


def build(output: Path) -> list[str]:
    """Render the reference into ``output``; return pdoc's warnings."""
    _resolve_named_tuple_fields()
    pdoc.render.configure(docformat="restructuredtext", show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*PUBLIC_MODULES, output_directory=output)
    return [str(w.message) for w in caught]


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "api"
    problems = build(output)
    for problem in problems:
        print(f"pdoc: {problem}", file=sys.stderr)
    print(f"API reference in {output}/index.html" if not problems else "API reference has warnings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
