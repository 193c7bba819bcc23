"""The Keras side of `bench/speed.py --vs keras`: the published recipe in Keras 3 on TensorFlow (CPU).

Runs in its own environment (`make bench-setup` creates .venv-keras); it never imports stockrnn.
It trains on the windows that speed.py wrote, times every epoch, predicts the test windows and
prints one JSON line: epoch seconds, scaled test predictions and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", required=True, help=".npz from speed.py: x, y, x_test")
    parser.add_argument("--cell", choices=("lstm", "gru"), required=True)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    data = np.load(args.windows)
    x, y, x_test = data["x"], data["y"], data["x_test"]

    layer = keras.layers.LSTM if args.cell == "lstm" else keras.layers.GRU
    stack: list = [keras.Input(shape=x.shape[1:])]
    for i in range(4):
        stack += [layer(50, return_sequences=i < 3), keras.layers.Dropout(0.2)]
    model = keras.Sequential([*stack, keras.layers.Dense(y.shape[1])])
    if args.cell == "lstm":
        optimizer = keras.optimizers.RMSprop()  # the recipe's defaults: lr 0.001, rho 0.9
    else:
        optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=False)
    model.compile(optimizer=optimizer, loss="mean_squared_error")

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    seconds: list[float] = []
    model.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0, callbacks=[Clock()])
    predicted = model.predict(x_test, batch_size=512, verbose=0)
    try:  # VmHWM: ru_maxrss of a vfork+exec child includes its parent's peak on Linux
        with open("/proc/self/status") as f:
            peak_mb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    versions = f"keras {keras.__version__}, tensorflow {tf.__version__}"
    print(
        json.dumps(
            {"epoch_seconds": seconds, "predicted": predicted.tolist(), "peak_mb": peak_mb, "versions": versions}
        )
    )


if __name__ == "__main__":
    main()
