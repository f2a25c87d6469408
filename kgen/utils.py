"""Small utilities shared by every family: seeding and argument checks."""

import keras


def set_seed(seed):
    """Seed Python, NumPy and the active Keras backend.

    After `set_seed(s)`, building the same model and drawing the same random numbers on the same backend gives
    the same values. Random ops inside kgen models use a `keras.random.SeedGenerator` owned by the model, whose
    initial state is drawn here, so this one call makes a whole run reproducible.

    Args:
        seed: a non-negative Python int.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`seed` must be a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed}")
    keras.utils.set_random_seed(seed)
