"""PyTorch glue: autograd with graphs kept for double backprop; compiled functions run eagerly."""

import functools

import keras
import torch


def input_gradient(fn, x):
    x = keras.ops.convert_to_tensor(x)
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x).sum()
        (grad,) = torch.autograd.grad(y, x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def gradients(loss_fn, variables):
    variables = list(variables)
    with torch.enable_grad():
        loss = loss_fn()
        # autograd.grad, not backward(): only these variables get gradients, nothing accumulates elsewhere.
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    grads = [torch.zeros_like(v.value) if g is None else g for g, v in zip(grads, variables)]
    return loss.detach(), grads


def replica_mean(loss):
    return loss


def apply_gradients(optimizer, grads, variables):
    # The update itself must not be recorded by autograd.
    with torch.no_grad():
        optimizer.apply(grads, variables)


class AdversarialTrainer(keras.Model):
    def train_step(self, data):
        return self._adversarial_train_step(data)


def compile_function(fn, variables, jit_compile="auto"):
    # torch.compile is slower than eager for these small loops on CPU (keras#21851); eager without autograd.
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with torch.no_grad():
            return fn(*args, **kwargs)

    return call


def num_devices():
    return torch.cuda.device_count() or 1


def data_parallel(devices):
    raise ValueError("kgen.distribute.data_parallel needs the JAX or TensorFlow backend: Keras 3.15 has no "
                     "distribution support for torch (wrap a custom loop in torch DistributedDataParallel)")
