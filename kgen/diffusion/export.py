"""The serving endpoints of a `DiffusionModel` for `kgen.export`: the network and whole compiled DDIM loops.

`DiffusionModel.export_endpoints` delegates here; see its docstring (and `kgen.export`) for the endpoints.
"""

import keras
from keras import ops

from kgen.diffusion.guidance import UpsampleGuidance
from kgen.diffusion.samplers import DDIMSampler
from kgen.endpoint import Endpoint

__all__ = ["export_endpoints"]


def export_endpoints(model, steps=50, upsample_scale=None, upsample_w=1.0, use_ema=True, clip_denoised="auto"):
    """The `kgen.export.Endpoint`s of `model` (a `DiffusionModel`); arguments as `DiffusionModel.export_endpoints`."""
    if model.num_classes is not None:
        raise ValueError("export of conditional diffusion models is not supported yet: export the network "
                         "with model.network.export(path)")
    if len(model.data_shape) != 3 and upsample_scale is not None:
        raise ValueError("`upsample_scale` needs image data (H, W, C)")
    model.finish_ema()
    chain = DDIMSampler(model.schedule, steps, clip_denoised=model._resolve_clip(clip_denoised))

    def denoise(x, logsnr):  # `x`, not `x_t`: the argument names are the SavedModel signature's input names
        return model.eps_fn(x, logsnr, use_ema=use_ema)

    def sample(x_T):
        return chain.loop(denoise, x_T)

    def sample_random(temperature):
        x_T = keras.random.normal((ops.shape(temperature)[0],) + model.data_shape, seed=model.seed_generator)
        return sample(x_T * ops.reshape(temperature, (-1,) + (1,) * len(model.data_shape)))

    x_spec = keras.InputSpec(shape=(None,) + model.data_shape, dtype="float32")
    endpoints = [Endpoint("serve", denoise, [x_spec, keras.InputSpec(shape=(None,), dtype="float32")]),
                 Endpoint("denoise", denoise, [x_spec, keras.InputSpec(shape=(None,), dtype="float32")]),
                 Endpoint("sample", sample, [x_spec]),
                 Endpoint("sample_random", sample_random, [keras.InputSpec(shape=(None, 1), dtype="float32")],
                          random=True)]
    if upsample_scale is not None:
        guided = UpsampleGuidance(denoise, model.schedule, upsample_scale, w=upsample_w)
        h, w, c = model.data_shape
        big = keras.InputSpec(shape=(None, h * guided.scale, w * guided.scale, c), dtype="float32")
        endpoints.append(Endpoint("sample_upsampled", lambda x_T: chain.loop(guided, x_T), [big]))
    return endpoints
