"""Coupling networks: NICE's m(·), RealNVP's s(·)/t(·), Glow's f(·). They never need inverting.

- NICE (Dinh et al. 2014, arXiv:1410.8516; Su, https://kexue.fm/archives/5776): m = MLP, 5 hidden layers × 1000
  ReLU units. The paper's output is linear; Su's code ends in ReLU (`output_activation="relu"`).
- Glow (Kingma & Dhariwal 2018, arXiv:1807.03039; Su, https://kexue.fm/archives/5807): f = conv3×3-ReLU →
  conv1×1-ReLU → conv3×3, the last conv zero-initialised so that every coupling starts as the identity.
  openai/glow's last conv (`conv2d_zeros`) also multiplies its output by exp(3·logs) with a zero-initialised
  per-channel `logs`: `output_scale=True` here (`ZeroInitScale`). openai's actnorm inside f is left out.

Both builders return a plain `keras.Sequential` of built-in layers (plus the registered `ZeroInitScale`), so a
coupling layer can rebuild its network from its own config and `.keras` files load with `safe_mode=True`.
"""

import keras
from keras import ops

from kgen._checks import check_int


@keras.saving.register_keras_serializable(package="kgen")
class ZeroInitScale(keras.layers.Layer):
    """y = x · exp(logscale_factor · logs), `logs` a zero-initialised trainable vector over the last axis.

    openai/glow's `conv2d_zeros` output scale. Storing logs/3 and multiplying by 3 makes the scale learn 3×
    faster under Adam, whose step size does not depend on the gradient's magnitude.

    Args:
        logscale_factor: the factor (3 in openai/glow).

    Shapes: `(batch, ..., C) -> (batch, ..., C)`.

    Example:
        >>> layer = ZeroInitScale()
        >>> y = layer(keras.ops.ones((2, 4, 4, 3)))      # identity at initialisation
    """

    def __init__(self, logscale_factor=3.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(logscale_factor, bool) or not isinstance(logscale_factor, (int, float)):
            raise TypeError(f"`logscale_factor` must be a number, got {logscale_factor!r}")
        self.logscale_factor = float(logscale_factor)

    def build(self, input_shape):
        self.logs = self.add_weight(shape=(int(input_shape[-1]),), initializer="zeros", name="logs")

    def call(self, x):
        return x * ops.exp(self.logs * self.logscale_factor)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "logscale_factor": self.logscale_factor}


def _last_initializer(zero_init):
    return "zeros" if zero_init else "glorot_uniform"


def check_bool(name, value):
    """Raise a TypeError naming `name` unless `value` is a bool (configs must stay JSON-serialisable)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")


def check_activation(name, value):
    """Accept None or a Keras activation name (a name, not a function, so the config serialises)."""
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be None or the name of a Keras activation, got {value!r}")
    try:
        keras.activations.get(value)
    except ValueError:
        raise ValueError(f"`{name}` must be None or the name of a Keras activation, got {value!r}") from None


def check_hidden(hidden):
    """`hidden` as a tuple of positive ints (an empty tuple makes m an affine map)."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"`hidden` must be a tuple of layer widths, got {hidden!r}")
    return tuple(check_int("hidden", width, 1) for width in hidden)


def mlp_network(out_dim, hidden=(1000,) * 5, activation="relu", output_activation=None, zero_init=True,
                output_scale=False, name=None, dtype=None):
    """NICE's m: Dense layers, `(batch, d_in) -> (batch, out_dim)`.

    Args:
        out_dim: output width.
        hidden: widths of the hidden layers (NICE and Su: five of 1000).
        activation: hidden activation (ReLU in NICE).
        output_activation: None (linear, the NICE paper) or e.g. "relu" (Su's nice.py).
        zero_init: zero the last layer's kernel and bias so a coupling starts as the identity (Glow's habit,
            applied to MLPs too; Su and NICE initialise it randomly).
        output_scale: append `ZeroInitScale` (openai/glow's exp(3·logs) output scale).
        name: the Sequential's name.
        dtype: dtype policy of every layer (a coupling passes its own, so per-layer float64 works).

    Example:
        >>> net = mlp_network(4, hidden=(32, 32))
        >>> net(keras.ops.ones((2, 4))).shape          # (2, 4), all zeros at initialisation
    """
    out_dim = check_int("out_dim", out_dim, 1)
    hidden = check_hidden(hidden)
    check_activation("activation", activation)
    check_activation("output_activation", output_activation)
    check_bool("zero_init", zero_init)
    check_bool("output_scale", output_scale)
    layers = [keras.layers.Dense(width, activation=activation, dtype=dtype) for width in hidden]
    last = _last_initializer(zero_init)
    layers.append(keras.layers.Dense(out_dim, activation=output_activation, kernel_initializer=last,
                                     bias_initializer="zeros", dtype=dtype))
    if output_scale:
        layers.append(ZeroInitScale(dtype=dtype))
    return keras.Sequential(layers, name=name)


def conv_network(out_channels, filters=512, zero_init=True, output_scale=False, output_activation=None,
                 activation="relu", name=None, dtype=None):
    """Glow's f: conv3×3(filters) → conv1×1(filters) → conv3×3(out_channels), `(b, H, W, c) -> (b, H, W, out)`.

    Args:
        out_channels: output channels (c for an additive coupling, 2c for an affine one).
        filters: hidden channels (512 in Glow and Su's glow.py; TFP's GlowDefaultNetwork uses 400).
        zero_init: zero the last conv (Glow), so the coupling starts as the identity.
        output_scale: multiply the output by exp(3·logs), `logs` zero-initialised per channel (openai/glow's
            `conv2d_zeros`; Su's Keras glow.py leaves it out).
        output_activation: activation of the last conv (None in Glow).
        activation: hidden activation.
        name: the Sequential's name.
        dtype: dtype policy of every layer.

    Example:
        >>> net = conv_network(6, filters=16)
        >>> net(keras.ops.ones((2, 8, 8, 3))).shape     # (2, 8, 8, 6)
    """
    out_channels = check_int("out_channels", out_channels, 1)
    filters = check_int("filters", filters, 1)
    check_activation("activation", activation)
    check_activation("output_activation", output_activation)
    check_bool("zero_init", zero_init)
    check_bool("output_scale", output_scale)
    last = _last_initializer(zero_init)
    layers = [
        keras.layers.Conv2D(filters, 3, padding="same", activation=activation, dtype=dtype),
        keras.layers.Conv2D(filters, 1, activation=activation, dtype=dtype),
        keras.layers.Conv2D(out_channels, 3, padding="same", activation=output_activation,
                            kernel_initializer=last, bias_initializer="zeros", dtype=dtype),
    ]
    if output_scale:
        layers.append(ZeroInitScale(dtype=dtype))
    return keras.Sequential(layers, name=name)
