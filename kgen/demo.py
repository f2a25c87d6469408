"""Deprecated alias of `kgen.app.demo`; removed in kgen 0.3."""

import warnings

from kgen.app.demo import Section, write_demo  # noqa: F401

warnings.warn("kgen.demo moved to kgen.app.demo", DeprecationWarning, stacklevel=2)
