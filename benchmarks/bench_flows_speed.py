"""Glow training speed (examples/s) on 28×28 animals across backends, measured in one run.

The same model (2 levels × 8 steps, 64 filters, LU 1×1 convs, affine couplings) trains one epoch of 2048
images after a warm-up epoch, in a fresh process per backend; the ratios are against TensorFlow.

    python benchmarks/bench_flows_speed.py            # runs jax, tensorflow and torch subprocesses
"""

import json
import sys
import time

from _child import child_role, run_child

N, BATCH = 2048, 64
BACKENDS = ("all-in-one",)


def measure():
    import keras

    import kgen
    from kgen.datasets import ANIMAL_LEVELS, dequantize, load_animals
    from kgen.flows import Glow

    kgen.set_seed(0)
    x = dequantize(load_animals("train")[0][:N], ANIMAL_LEVELS, seed=0)
    model = Glow((28, 28, 1), levels=2, depth=8, filters=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x[: BATCH * 4], batch_size=BATCH, epochs=1, verbose=0)  # initialisation and compilation
    start = time.perf_counter()
    model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    return N / (time.perf_counter() - start)


def main():
    if child_role():
        print(json.dumps({"examples_per_s": measure()}))
        return 0
    rates = {}
    for backend in ("jax", "tensorflow", "torch"):
        result = run_child(__file__, backend)
        rates[backend] = result["examples_per_s"] if result else float("nan")
    for backend, rate in rates.items():
        print(f"[{backend}] Glow 28×28 (2×8 steps, 64 filters) training: {rate:.1f} examples/s, "
              f"×{rate / rates['tensorflow']:.2f} vs tensorflow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
