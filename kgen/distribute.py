"""`kgen.distribute`: data-parallel training on the devices you have (`data_parallel()`, `num_devices()`).

The backend-specific work lives in `kgen.backend.distribute`; this module is the public name, so that both
`kgen.distribute.data_parallel()` and `from kgen.distribute import data_parallel` work.
"""

from kgen.backend.distribute import data_parallel, num_devices  # noqa: F401

__all__ = ["data_parallel", "num_devices"]
