"""A small channels-last U-Net conditioned on log-SNR, for pixel-space diffusion on small images.

Architecture: Ho et al. 2020 (DDPM, arXiv 2006.11239, after PixelCNN++ / Wide ResNet): residual blocks with
GroupNorm + SiLU, the noise level added to every block through an embedding, self-attention at low
resolution, skip connections between matching levels. Class conditioning adds a learned label embedding
with one extra "null" class, so one network serves classifier-free guidance (Ho & Salimans 2022).

The noise level enters as the log-SNR λ = log(α²/σ²) (VDM, Kingma et al. 2021; simple diffusion, Hoogeboom
et al. 2023), not as an integer step, because the two resolution results of Su's "生成扩散模型漫谈(二十二/二十三)"
(https://kexue.fm/archives/10047, /10055) are statements about λ:

- average pooling by s×s multiplies the SNR by s², so a pooled noisy image is a clean-schedule image at
  λ + 2 log s (Upsample Guidance, Hwang et al. 2024, arXiv 2404.01709: Su's "time adjustment" τ);
- the shifted schedule of simple diffusion is λ(t) + 2 log(64/d).

With λ as the input, both are exact: feed λ + 2 log s, no search over a step grid. The embedding is
sinusoidal in λ itself, sin(ω_k λ) and cos(ω_k λ) with ω_k geometric in [1/max_frequency, max_frequency]
(per unit of λ), followed by a two-layer MLP.

Notation: this file sees only (x_t, λ); Su's x_t = ᾱ_t x_0 + β̄_t ε is the VDM z_t = α_t x + σ_t ε, and
λ = log(ᾱ_t²/β̄_t²).

Sizes: the network downsamples by 2 between levels only while the current height and width are both even
(28 → 14 → 7 → 7, 14 → 7 → 7, 8 → 4 → 2); a level that cannot halve keeps its size. The network is fully
convolutional, so it also accepts other sizes divisible by `downsampling_factor` (a 14×14 model runs at
28×28 for Upsample Guidance); any other size raises ValueError.

The blocks (GroupNorm, LogSNREmbedding, ResBlock, SelfAttention2D) live in `kgen.diffusion.unet_layers` and are
re-exported here.
"""

import keras
from keras import ops

from kgen import backend as kb
from kgen._checks import check_int, check_positive_float
from kgen.diffusion.unet_layers import GroupNorm, LogSNREmbedding, ResBlock, SelfAttention2D, _groups  # noqa: F401


@keras.saving.register_keras_serializable(package="kgen")
class UNet(keras.Model):
    """DDPM-style U-Net predicting a tensor of the image's shape from `[x_t, logsnr]` (+ `labels`).

    Args:
        image_shape: `(H, W, C)` of the training images (channels last).
        channels: base width; level i has `channels * channel_mults[i]` channels.
        channel_mults: one multiplier per level. Between levels the resolution halves while H and W are even.
        num_res_blocks: residual blocks per level on the way down (one more on the way up, as in DDPM).
        attention_resolutions: heights at which a level gets self-attention after each residual block
            (the middle block attends when the lowest level does).
        num_heads: attention heads.
        dropout: dropout rate inside residual blocks.
        num_classes: None for an unconditional network; else labels 0..num_classes-1 are classes and label
            `num_classes` is the null class (classifier-free guidance).
        norm_groups: at most this many GroupNorm groups (the largest divisor of the width not above it).
        embedding_dim: width of the λ (and label) embedding; default `4 * channels`.
        max_frequency: highest frequency of the sinusoidal λ features (per unit of λ).
        out_channels: channels of the output; default C.

    Inputs: x (batch, H', W', C) with H', W' divisible by `downsampling_factor`, logsnr (batch,), and when
    conditional labels (batch,) ints. Output: (batch, H', W', out_channels). The output convolution starts at
    zero, so an untrained network predicts 0 (ε-prediction starts at the loss of the zero predictor).

    Example:

    ```python
    import keras
    from kgen.diffusion import UNet

    net = UNet((14, 14, 1), channels=16, channel_mults=(1, 2), attention_resolutions=(7,))
    eps = net([keras.ops.zeros((2, 14, 14, 1)), keras.ops.zeros((2,))])   # (2, 14, 14, 1), zeros untrained
    eps = net([keras.ops.zeros((2, 28, 28, 1)), keras.ops.zeros((2,))])   # fully convolutional: 28×28 too
    ```
    """

    def __init__(self, image_shape, channels=32, channel_mults=(1, 2, 2), num_res_blocks=1,
                 attention_resolutions=(7,), num_heads=1, dropout=0.0, num_classes=None, norm_groups=8,
                 embedding_dim=None, max_frequency=16.0, out_channels=None, **kwargs):
        # Mixed precision: every sublayer gets this network's policy (also on reload, whatever the global one
        # is then), and the inputs are not cast here: λ must reach its sinusoids in float32 (a bf16 λ is off by
        # up to 0.03, i.e. a phase error of 0.5 rad at the highest frequency); the first convolution casts x.
        super().__init__(**{**kwargs, "autocast": False})
        image_shape = tuple(image_shape)
        if len(image_shape) != 3:
            raise ValueError(f"`image_shape` must be (H, W, C), got {image_shape}")
        self.image_shape = tuple(check_int("image_shape", d, 1) for d in image_shape)
        self.channels = check_int("channels", channels, 1)
        if len(channel_mults) < 1:
            raise ValueError("`channel_mults` must hold at least one multiplier")
        self.channel_mults = tuple(check_int("channel_mults", m, 1) for m in channel_mults)
        self.num_res_blocks = check_int("num_res_blocks", num_res_blocks, 1)
        self.attention_resolutions = tuple(check_int("attention_resolutions", r, 1) for r in attention_resolutions)
        self.num_heads = check_int("num_heads", num_heads, 1)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.num_classes = None if num_classes is None else check_int("num_classes", num_classes, 1)
        self.norm_groups = check_int("norm_groups", norm_groups, 1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim or 4 * self.channels, 2)
        self.max_frequency = check_positive_float("max_frequency", max_frequency)
        self.out_channels = check_int("out_channels", out_channels or self.image_shape[-1], 1)
        self._make_layers()
        self._build_by_calling()

    # ------------------------------------------------------------------ structure
    def _make_layers(self):
        height, width, _ = self.image_shape
        res = dict(norm_groups=self.norm_groups, dropout=self.dropout, dtype=self.dtype_policy)
        attn = dict(num_heads=self.num_heads, norm_groups=self.norm_groups, dtype=self.dtype_policy)
        self.embedding = LogSNREmbedding(self.embedding_dim, self.max_frequency, dtype=self.dtype_policy,
                                         autocast=False)  # λ reaches its sinusoids in float32
        self.label_embedding = (None if self.num_classes is None else
                                keras.layers.Embedding(self.num_classes + 1, self.embedding_dim, dtype=self.dtype_policy))
        self.conv_in = keras.layers.Conv2D(self.channels, 3, padding="same", dtype=self.dtype_policy)
        self.level_attention, self.level_downsamples = [], []
        self.down_blocks, self.down_attention, self.downsamplers = [], [], []
        for level, mult in enumerate(self.channel_mults):
            width_l = self.channels * mult
            use_attention = height in self.attention_resolutions
            self.level_attention.append(use_attention)
            for _ in range(self.num_res_blocks):
                self.down_blocks.append(ResBlock(width_l, **res))
                self.down_attention.append(SelfAttention2D(**attn) if use_attention else None)
            halve = level < len(self.channel_mults) - 1 and height % 2 == 0 and width % 2 == 0
            self.level_downsamples.append(halve)
            self.downsamplers.append(keras.layers.Conv2D(width_l, 3, strides=2, padding="same",
                                                                       dtype=self.dtype_policy) if halve else None)
            if halve:
                height, width = height // 2, width // 2
        mid = self.channels * self.channel_mults[-1]
        self.mid_block1 = ResBlock(mid, **res)
        self.mid_attention = SelfAttention2D(**attn) if self.level_attention[-1] else None
        self.mid_block2 = ResBlock(mid, **res)
        self.up_blocks, self.up_attention, self.upsamplers = [], [], []
        for level in reversed(range(len(self.channel_mults))):
            width_l = self.channels * self.channel_mults[level]
            for _ in range(self.num_res_blocks + 1):
                self.up_blocks.append(ResBlock(width_l, **res))
                self.up_attention.append(SelfAttention2D(**attn) if self.level_attention[level] else None)
            # Undo the halving that led from level-1 into this level.
            halved = level > 0 and self.level_downsamples[level - 1]
            self.upsamplers.append(keras.layers.Conv2D(width_l, 3, padding="same", dtype=self.dtype_policy)
                                   if halved else None)
        self.norm_out = GroupNorm(_groups(self.channels, self.norm_groups), dtype=self.dtype_policy)
        self.conv_out = keras.layers.Conv2D(self.out_channels, 3, padding="same", kernel_initializer="zeros",
                                            dtype=self.dtype_policy)
        self.downsampling_factor = 2 ** sum(self.level_downsamples)

    def _build_by_calling(self):
        # Every weight exists once the constructor returns, so a reloaded model can take its weights.
        shapes = [(1,) + self.image_shape, (1,)] + ([(1,)] if self.num_classes is not None else [])
        self.build(shapes)

    def build(self, input_shape=None):
        # One symbolic forward pass (shapes only, no computation) creates every sub-layer's weights inside
        # `build`, so that Keras registers them with this layer when `build` returns. Built lazily by the first
        # call instead, they would be missing from the torch backend's `parameters()` of the network (which
        # `torch.jit.trace`, `kgen.backend.call_network` and torch-native code rely on).
        inputs = [keras.KerasTensor((1,) + self.image_shape), keras.KerasTensor((1,))]
        if self.num_classes is not None:
            inputs.append(keras.KerasTensor((1,), dtype="int32"))
        self.call(inputs)

    # ------------------------------------------------------------------ forward
    def _check_inputs(self, inputs):
        expected = 2 if self.num_classes is None else 3
        if not isinstance(inputs, (list, tuple)) or len(inputs) != expected:
            names = "[x, logsnr]" if expected == 2 else "[x, logsnr, labels]"
            raise ValueError(f"UNet expects inputs {names}, got {type(inputs).__name__} of length "
                             f"{len(inputs) if isinstance(inputs, (list, tuple)) else 1}")
        shape = kb.static_shape(inputs[0])  # plain ints inside a torch trace too (kb.call_network)
        if len(shape) != 4 or shape[-1] != self.image_shape[-1]:
            raise ValueError(f"`x` must have shape (batch, H, W, {self.image_shape[-1]}), got {shape}")
        f = self.downsampling_factor
        if any(d is not None and d % f for d in shape[1:3]):
            raise ValueError(f"image size {shape[1]}x{shape[2]} is not compatible with this UNet: height and width "
                             f"must be divisible by {f} (built for {self.image_shape[0]}x{self.image_shape[1]})")

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        x, logsnr = inputs[0], inputs[1]
        emb = self.embedding(logsnr)
        if self.label_embedding is not None:
            emb = emb + self.label_embedding(ops.cast(inputs[2], "int32"))
        h = self.conv_in(x)
        skips = [h]
        blocks = iter(zip(self.down_blocks, self.down_attention))
        for level in range(len(self.channel_mults)):
            for _ in range(self.num_res_blocks):
                block, attention = next(blocks)
                h = block([h, emb], training=training)
                h = attention(h) if attention is not None else h
                skips.append(h)
            if level < len(self.channel_mults) - 1:
                downsample = self.downsamplers[level]
                h = downsample(h) if downsample is not None else h
                skips.append(h)
        h = self.mid_block1([h, emb], training=training)
        h = self.mid_attention(h) if self.mid_attention is not None else h
        h = self.mid_block2([h, emb], training=training)
        blocks = iter(zip(self.up_blocks, self.up_attention))
        for upsample in self.upsamplers:
            for _ in range(self.num_res_blocks + 1):
                block, attention = next(blocks)
                h = block([ops.concatenate([h, skips.pop()], axis=-1), emb], training=training)
                h = attention(h) if attention is not None else h
            if upsample is not None:
                h = upsample(ops.repeat(ops.repeat(h, 2, axis=1), 2, axis=2))
        return self.conv_out(ops.silu(self.norm_out(h)))

    def get_config(self):
        return {"image_shape": list(self.image_shape), "channels": self.channels,
                "channel_mults": list(self.channel_mults), "num_res_blocks": self.num_res_blocks,
                "attention_resolutions": list(self.attention_resolutions), "num_heads": self.num_heads,
                "dropout": self.dropout, "num_classes": self.num_classes, "norm_groups": self.norm_groups,
                "embedding_dim": self.embedding_dim, "max_frequency": self.max_frequency,
                "out_channels": self.out_channels, "name": self.name, "dtype": self.dtype_policy.name}

