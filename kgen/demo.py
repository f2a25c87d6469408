"""Deprecated alias of `kgen.app.demo`; removed in kgen 0.3."""

from kgen._deprecation import warn_deprecated
from kgen.app.demo import Section, write_demo  # noqa: F401

warn_deprecated("the module kgen.demo", "kgen.app.demo")
