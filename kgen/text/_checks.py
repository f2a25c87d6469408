"""Value checks of the text models' inputs (private; NumPy only)."""

import numpy as np


def check_token_ids(token_ids, vocab_size, name="token_ids"):
    """Raise unless `token_ids` holds integers in [0, vocab_size): TypeError for other dtypes, else ValueError."""
    ids = np.asarray(token_ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"`{name}` must be integer token ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"`{name}` must lie in [0, vocab_size={vocab_size}); got ids from {ids.min()} to {ids.max()}")
