"""Coupling layers: NICE's additive coupling and RealNVP/Glow's affine coupling (data→latent direction).

Papers: NICE (Dinh, Krueger & Bengio 2014, arXiv:1410.8516), RealNVP (Dinh, Sohl-Dickstein & Bengio 2016,
arXiv:1605.08803), Glow (Kingma & Dhariwal 2018, arXiv:1807.03039). Articles: Su Jianlin,
https://kexue.fm/archives/5776 (NICE, eqs. 7–9) and https://kexue.fm/archives/5807 (RealNVP and Glow).

Notation (Su's): the input x is split into a conditioning part x1 and a transformed part x2;

    additive (NICE eq. 7):   z1 = x1,   z2 = x2 + m(x1)                      log|det| = 0
    affine (RealNVP):        z1 = x1,   z2 = s(x1) ⊙ x2 + t(x1)              log|det| = Σ log s

The Jacobian is block-triangular with identity (additive) or diag(s) (affine) on the x2 block, hence the log-dets.
m, s and t are arbitrary networks (`kgen.flows.layers.networks`) that are never inverted.

Partitions (`partition`), on the last axis (vector features or image channels) unless stated:
- "halves": x1 = first half, x2 = second half (TFP `RealNVP(num_masked=D//2)`; Glow's channel split).
- "interleave": x1 = even indices, x2 = odd indices (NICE and Su's `SplitVector`).
- "channel": RealNVP's channel-wise mask, images only; the same split as "halves".
- "checkerboard": RealNVP's spatial mask, images only: b(i, j) = (i + j + parity) mod 2, equal for all
  channels; z = b⊙x + (1−b)⊙(x ⊙ s(b⊙x) + t(b⊙x)). The network sees b⊙x (RealNVP's code also feeds b as a
  channel; the unmasked positions that matter all see the same mask pattern, so it is left out here).
`parity=1` swaps the roles of the two parts, so alternating parities transform every element.
"""

import keras
import numpy as np
from keras import ops

from kgen._checks import check_choice, check_int
from kgen.flows.layers.base import FlowLayer, sum_except_batch, zeros_logdet
from kgen.flows.layers.networks import (
    check_activation,
    check_bool,
    check_hidden,
    conv_network,
    mlp_network,
)

PARTITIONS = ("halves", "interleave", "channel", "checkerboard")
NETWORKS = ("mlp", "conv")
SCALE_FNS = ("exp", "tanh_exp", "sigmoid")
ORDERS = ("scale_then_shift", "shift_then_scale")


class _Coupling(FlowLayer):
    """Partition logic and network building shared by the additive and affine couplings.

    Subclasses set how many outputs per transformed element the network has (`_outputs_per_element`) and
    implement `_couple(x2, h) -> (z2, log_s or None)` and `_uncouple(z2, h) -> x2`.
    """

    _outputs_per_element = 1

    def __init__(self, partition="halves", network=None, hidden=(1000,) * 5, filters=512, parity=0,
                 output_scale=False, output_activation=None, network_dtype=None, **kwargs):
        dtype_given = kwargs.get("dtype") is not None
        network_given = network_dtype is not None
        super().__init__(**kwargs)
        # The network alone computes in the (possibly mixed) policy; its output is cast back to the state dtype.
        # Default: the layer's own policy when it was given (a float64 layer has a float64 network), else the
        # global one (mixed_bfloat16 → bf16 network, float32 state).
        if network_dtype is None:
            network_dtype = self.dtype_policy if dtype_given else keras.config.dtype_policy()
        self.network_dtype = keras.dtype_policies.get(network_dtype).name
        self.network_dtype_given = dtype_given or network_given  # else a Flow sets it to its own (Flow._finish)
        self.partition = check_choice("partition", partition, PARTITIONS)
        if network is not None:
            check_choice("network", network, NETWORKS)
        self.network = network
        self.hidden = check_hidden(hidden)
        self.filters = check_int("filters", filters, 1)
        self.parity = check_int("parity", parity, 0)
        if self.parity > 1:
            raise ValueError(f"`parity` must be 0 or 1, got {parity}")
        check_bool("output_scale", output_scale)
        self.output_scale = output_scale
        check_activation("output_activation", output_activation)
        self.output_activation = output_activation

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in (2, 4) or any(d is None for d in shape[1:]):
            raise ValueError(f"`x` must have a static shape (batch, D) or (batch, H, W, C), got {shape}")
        self.event_shape = tuple(int(d) for d in shape[1:])
        is_image = len(shape) == 4
        if self.partition in ("checkerboard", "channel") and not is_image:
            raise ValueError(f"partition={self.partition!r} needs images `x` of shape (batch, H, W, C), got {shape}; "
                             "use 'halves' or 'interleave' for vectors")
        kind = self.network or ("conv" if is_image else "mlp")
        if (kind == "conv") != is_image:
            raise ValueError(f"network={kind!r} cannot take `x` of shape {shape}: 'mlp' is for (batch, D), "
                             "'conv' for (batch, H, W, C)")
        channels = self.event_shape[-1]
        if self.partition == "checkerboard":
            height, width = self.event_shape[:2]
            rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
            # 1 marks the conditioning (kept) pixels; a numpy constant, made a tensor only inside call.
            self.mask = ((rows + cols + self.parity) % 2).astype("float32")[:, :, None]
            n, net_input = channels, self.event_shape
        else:
            if channels % 2:
                raise ValueError(f"`x` must have an even number of {'channels' if is_image else 'features'} "
                                 f"for partition={self.partition!r}, got {channels}")
            n = channels // 2
            net_input = self.event_shape[:-1] + (n,)
        out = self._outputs_per_element * n
        # A zero-initialised last layer makes the coupling start as the identity, except behind a ReLU: relu'(0)
        # is 0, so m would never move. Su's ReLU-output m keeps Keras's random init, as in his nice.py.
        zero_init = self.output_activation != "relu"
        if kind == "mlp":
            self.net = mlp_network(out, self.hidden, output_activation=self.output_activation, zero_init=zero_init,
                                   output_scale=self.output_scale, dtype=self.network_dtype)
        else:
            self.net = conv_network(out, self.filters, output_activation=self.output_activation, zero_init=zero_init,
                                    output_scale=self.output_scale, dtype=self.network_dtype)
        self.net.build((None,) + net_input)

    # ------------------------------------------------------------------ partition
    def _split(self, x):
        """x → (x1, x2): conditioning and transformed parts."""
        if self.partition == "interleave":
            pairs = ops.reshape(x, (-1,) + self.event_shape[:-1] + (self.event_shape[-1] // 2, 2))
            first, second = ops.unstack(pairs, num=2, axis=-1)
        else:
            first, second = ops.split(x, 2, axis=-1)
        return (second, first) if self.parity else (first, second)

    def _merge(self, x1, x2):
        first, second = (x2, x1) if self.parity else (x1, x2)
        if self.partition == "interleave":
            return ops.reshape(ops.stack([first, second], axis=-1), (-1,) + self.event_shape)
        return ops.concatenate([first, second], axis=-1)

    # ------------------------------------------------------------------ contract
    def call(self, x, training=None):
        if self.partition == "checkerboard":
            b = ops.convert_to_tensor(self.mask, dtype=x.dtype)
            h = ops.cast(self.net(b * x, training=training), x.dtype)
            y, log_s = self._couple(x, h)
            z = b * x + (1.0 - b) * y
            logdet = zeros_logdet(x) if log_s is None else sum_except_batch((1.0 - b) * log_s)
            return z, logdet
        x1, x2 = self._split(x)
        z2, log_s = self._couple(x2, ops.cast(self.net(x1, training=training), x.dtype))
        logdet = zeros_logdet(x) if log_s is None else sum_except_batch(log_s)
        return self._merge(x1, z2), logdet

    def inverse(self, z):
        if not self.built:
            self.build(tuple(z.shape))
        if self.partition == "checkerboard":
            b = ops.convert_to_tensor(self.mask, dtype=z.dtype)
            x = self._uncouple(z, ops.cast(self.net(b * z), z.dtype))
            return b * z + (1.0 - b) * x
        z1, z2 = self._split(z)
        return self._merge(z1, self._uncouple(z2, ops.cast(self.net(z1), z.dtype)))

    def _couple(self, x2, h):
        raise NotImplementedError

    def _uncouple(self, z2, h):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "partition": self.partition, "network": self.network,
                "hidden": list(self.hidden), "filters": self.filters, "parity": self.parity,
                "output_scale": self.output_scale, "network_dtype": self.network_dtype}


@keras.saving.register_keras_serializable(package="kgen")
class AdditiveCoupling(_Coupling):
    """NICE's additive coupling z1 = x1, z2 = x2 + m(x1) (Su 5776 eq. 7); log-det 0, inverse x2 = z2 − m(z1).

    Su's nice.py reverses the roles (`subtract=True`): the encoder subtracts, z2 = x2 − m(x1), and the decoder
    adds. With m ending in ReLU (`output_activation="relu"`) the decoder then adds a non-negative m, which Su
    chose because it pushes generated pixels towards positive values.

    Args:
        partition: "halves", "interleave" (NICE), "channel" or "checkerboard" (images); see the module docstring.
        network: "mlp" for vectors, "conv" for images, or None to choose by the input's rank.
        hidden: MLP hidden widths (NICE: five layers of 1000).
        filters: hidden channels of the conv network (Glow: 512).
        parity: 0 or 1; 1 swaps which part conditions the other.
        subtract: Su's sign convention (encoder subtracts).
        output_activation: activation of m's last layer: None (NICE paper, Glow) or "relu" (Su).
        output_scale: multiply m's output by openai/glow's zero-initialised exp(3·logs).

    The last layer of m is zero-initialised, so the layer starts as the identity.

    Shapes: `x` `(batch, D)` with D even, or `(batch, H, W, C)` (C even unless checkerboard) → `z` same,
    `logdet` `(batch,)` of zeros.

    Example:
        >>> layer = AdditiveCoupling(partition="interleave", hidden=(64, 64), subtract=True,
        ...                          output_activation="relu")          # Su's NICE coupling
        >>> x = keras.random.normal((8, 16))
        >>> z, logdet = layer(x)
        >>> x_back = layer.inverse(z)
    """

    def __init__(self, partition="halves", network=None, hidden=(1000,) * 5, filters=512, parity=0,
                 subtract=False, output_activation=None, output_scale=False, **kwargs):
        super().__init__(partition=partition, network=network, hidden=hidden, filters=filters, parity=parity,
                         output_scale=output_scale, output_activation=output_activation, **kwargs)
        check_bool("subtract", subtract)
        self.subtract = subtract

    def _couple(self, x2, m):
        return (x2 - m if self.subtract else x2 + m), None

    def _uncouple(self, z2, m):
        return z2 + m if self.subtract else z2 - m

    def get_config(self):
        return {**super().get_config(), "subtract": self.subtract, "output_activation": self.output_activation}


@keras.saving.register_keras_serializable(package="kgen")
class AffineCoupling(_Coupling):
    """RealNVP/Glow affine coupling z1 = x1, z2 = s(x1) ⊙ x2 + t(x1); log|det ∂z/∂x| = Σ log s.

    The network maps x1 to 2·dim(x2) values per example, laid out as `[t | h]` on the last axis: the first
    half is the shift t, the second half the raw log-scale h (TFP's `shift_and_log_scale_fn` order; openai/glow
    interleaves them instead, `h[..., 0::2]` / `h[..., 1::2]`, and TFP's GlowBlock puts the scale first).

    Scale functions (`scale_fn`), s = ...:
    - "exp": exp(h), the RealNVP paper and Su's flow_layers.py; unbounded, and the usual source of NaNs
      (rosinality/glow-pytorch #25).
    - "tanh_exp": exp(a·tanh(h)), RealNVP's code, with a trainable scalar `a`. The code initialises `a` to 0;
      with a zero-initialised last layer that is a saddle (∂/∂a ∝ tanh(h) = 0 and ∂/∂h ∝ a = 0), so `a`
      starts at 1 here. The coupling still starts as the identity.
    - "sigmoid": sigmoid(h + 2), openai/glow's code and TFP's GlowBlock; s ∈ (0, 1), s ≈ 0.88 at
      initialisation, bounded gradients (openai/glow #62).

    Orders (`order`): "scale_then_shift" z2 = x2·s + t (RealNVP, TFP) or "shift_then_scale" z2 = (x2 + t)·s
    (openai/glow). The log-det is Σ log s for both.

    Args:
        partition: "halves", "interleave", "channel" or "checkerboard" (images); see the module docstring.
        network: "mlp" for vectors, "conv" for images, or None to choose by the input's rank.
        hidden: MLP hidden widths.
        filters: hidden channels of the conv network (Glow: 512).
        parity: 0 or 1; 1 swaps which part (or which checkerboard colour) conditions the other.
        scale_fn: "exp", "tanh_exp" or "sigmoid".
        order: "scale_then_shift" or "shift_then_scale".
        output_scale: multiply the network's output by openai/glow's zero-initialised exp(3·logs).

    Shapes: `x` `(batch, D)` with D even, or `(batch, H, W, C)` (C even unless checkerboard) → `z` same,
    `logdet` `(batch,)`.

    Example:
        >>> layer = AffineCoupling(partition="checkerboard", filters=32, scale_fn="sigmoid",
        ...                        order="shift_then_scale")
        >>> x = keras.random.normal((4, 8, 8, 3))
        >>> z, logdet = layer(x)                # logdet: (4,)
        >>> x_back = layer.inverse(z)
    """

    _outputs_per_element = 2

    def __init__(self, partition="halves", network=None, hidden=(1000,) * 5, filters=512, parity=0,
                 scale_fn="exp", order="scale_then_shift", output_scale=False, **kwargs):
        super().__init__(partition=partition, network=network, hidden=hidden, filters=filters, parity=parity,
                         output_scale=output_scale, **kwargs)
        self.scale_fn = check_choice("scale_fn", scale_fn, SCALE_FNS)
        self.order = check_choice("order", order, ORDERS)

    def build(self, input_shape):
        super().build(input_shape)
        if self.scale_fn == "tanh_exp":
            self.tanh_scale = self.add_weight(shape=(), initializer="ones", name="tanh_scale")

    def shift_and_log_scale(self, h):
        """Split the network output `[t | h]` into the shift t and log s."""
        shift, raw = ops.split(h, 2, axis=-1)
        if self.scale_fn == "exp":
            return shift, raw
        if self.scale_fn == "tanh_exp":
            return shift, ops.cast(self.tanh_scale, raw.dtype) * ops.tanh(raw)
        return shift, ops.log_sigmoid(raw + 2.0)

    def _couple(self, x2, h):
        shift, log_s = self.shift_and_log_scale(h)
        if self.order == "scale_then_shift":
            return x2 * ops.exp(log_s) + shift, log_s
        return (x2 + shift) * ops.exp(log_s), log_s

    def _uncouple(self, z2, h):
        shift, log_s = self.shift_and_log_scale(h)
        if self.order == "scale_then_shift":
            return (z2 - shift) * ops.exp(-log_s)
        return z2 * ops.exp(-log_s) - shift

    def get_config(self):
        return {**super().get_config(), "scale_fn": self.scale_fn, "order": self.order}
