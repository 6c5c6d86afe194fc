"""Build of the optional compiled ETF core (``dist_proto._etf_core``).

Everything else about the package is in ``pyproject.toml``. The extension is
``optional``: without a C compiler or Python headers, ``pip install`` still
succeeds and :mod:`dist_proto.etf` uses the pure-Python codec.
"""

import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """``build_ext`` that reports a failed build of the core instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # no compiler at all: setuptools raises before building
            self.warn(f"the compiled ETF core was not built ({e}); the pure-Python codec is used")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            self.warn(f"the compiled ETF core was not built ({e}); the pure-Python codec is used")


# the core reads CPython's object layout; other interpreters use the pure codec
CPYTHON = platform.python_implementation() == "CPython"

setup(
    ext_modules=[] if not CPYTHON else [
        Extension(
            "dist_proto._etf_core",
            sources=[
                "dist_proto/_etf_core.c",
                "dist_proto/_etf_core_decode.c",
                "dist_proto/_etf_core_encode.c",
            ],
            depends=["dist_proto/_etf_core.h"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wno-missing-braces"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
