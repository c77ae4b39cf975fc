"""Measure a plain twin and its attention models on one runtime, in a process of their own.

The harness starts `python -m keras_se.benchmarks.worker SPEC` once per group and runtime
(the Keras backend is fixed per process) with `KERAS_BACKEND` set. SPEC is a JSON object with
`models` (benchmark model names: a plain twin and its attention models), `runtime`, `modes`,
`batch_size`, `image_size`, `warmup`, `iterations`, `repeats`, `precision` and `threads`. The
worker prints one line `RESULT {json}`.

Timing: every model is built, compiled and run for `warmup` steps (the first one traces and
compiles; its time is `first_step_s`). Then come `repeats` rounds; in each round every model
of the group runs `iterations` steps, in an order rotated from round to round, so that a
change in the machine's speed (other tenants of a virtual machine, clocks) hits all of them
alike and cancels in the overhead. A run's images/s is `batch_size * iterations / seconds`.
Every step returns host values (predictions or the loss), so it has finished before the next
one starts, in Keras and timm alike. Keras: `predict_on_batch`, and `train_on_batch` with SGD
(momentum 0.9) and sparse cross-entropy on logits. timm: `model(x)` under
`torch.inference_mode()`, and forward, backward and `optimizer.step()`; channels_last, with
autocast for mixed precision.

Memory: the peak working memory of a step, that is the largest growth of memory during one of
the model's timed runs over what the process held before it (activations, gradients,
temporaries; the weights and optimizer state are held before and not included: see
`keras-se cost` for the parameter count). It is counted on the accelerator where there is
one, else in the process's resident memory (Linux). JAX cannot reset its peak counter, so on a
JAX accelerator a model's figure is at most the largest of its group's before it.
"""

import contextlib
import json
import os
import platform
import sys
import time

import numpy as np

RESULT_PREFIX = "RESULT "


def _cpu_name():
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


class HostMemory:
    """The process's resident memory; the peak is reset through `/proc/self/clear_refs`.

    Example:
    >>> memory = HostMemory()
    >>> memory.reset_peak()
    >>> block = np.ones(50_000_000 // 8)
    >>> memory.peak() - memory.current() >= 0, memory.kind
    (True, 'process RSS')
    """

    kind = "process RSS"

    def current(self):
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def reset_peak(self):
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")

    def peak(self):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")


class DeviceMemory:
    """An accelerator's allocated bytes and their peak, from the framework's allocator.

    Example:
    >>> memory = DeviceMemory(lambda: 10, lambda: 25, None)
    >>> memory.reset_peak(); memory.peak() - memory.current()
    15
    """

    kind = "device"

    def __init__(self, current, peak, reset_peak):
        self.current, self.peak, self._reset = current, peak, reset_peak

    def reset_peak(self):
        if self._reset is not None:  # JAX has no reset: its peak is the process's so far
            self._reset()


def _keras_device(keras):
    """`(device name, memory probe)` of the Keras backend's first device."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            stats = device.memory_stats
            return device.device_kind, DeviceMemory(
                lambda: stats()["bytes_in_use"], lambda: stats()["peak_bytes_in_use"], None
            )
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            info = tf.config.experimental.get_memory_info
            return tf.config.experimental.get_device_details(gpus[0]).get(
                "device_name", "GPU"
            ), DeviceMemory(
                lambda: info("GPU:0")["current"],
                lambda: info("GPU:0")["peak"],
                lambda: tf.config.experimental.reset_memory_stats("GPU:0"),
            )
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(), _torch_memory(torch)
    return _cpu_name(), HostMemory()


def _torch_memory(torch):
    return DeviceMemory(
        torch.cuda.memory_allocated,
        torch.cuda.max_memory_allocated,
        torch.cuda.reset_peak_memory_stats,
    )


def _set_threads(spec):
    """Apply `spec["threads"]` to TensorFlow or PyTorch; return the threads they will use
    (None on JAX, which sizes its CPU thread pool itself)."""
    threads = spec.get("threads")
    if spec["runtime"] in ("timm", "torch"):
        import torch

        if threads:
            torch.set_num_threads(threads)
        return torch.get_num_threads()
    if spec["runtime"].startswith("tensorflow"):
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return None


def _batch(spec, channels_first=False, classes=1000):
    rng = np.random.default_rng(0)
    size, batch = spec["image_size"], spec["batch_size"]
    shape = (batch, 3, size, size) if channels_first else (batch, size, size, 3)
    images = rng.uniform(-1.0, 1.0, shape).astype("float32")
    labels = rng.integers(0, classes, batch).astype("int32")
    return images, labels


def _keras_steps(spec):
    """`(device, memory, threads, build)`: `build(name)` returns `{mode: step}` for one Keras
    model."""
    import keras
    from keras_se.benchmarks.models import BENCH_MODELS

    backend = keras.backend.backend()
    expected = "tensorflow" if spec["runtime"].startswith("tensorflow") else spec["runtime"]
    if backend != expected:
        raise RuntimeError(f"runtime {spec['runtime']!r} needs KERAS_BACKEND={expected}.")
    threads = _set_threads(spec)
    device, memory = _keras_device(keras)
    keras.config.set_dtype_policy(spec["precision"])
    images, labels = _batch(spec, keras.config.image_data_format() == "channels_first")
    images, labels = keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)
    jit = {"tensorflow": False, "tensorflow-xla": True, "jax": True, "torch": False}

    def build(name):
        model = BENCH_MODELS[name].build(spec["image_size"])
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit[spec["runtime"]],
        )
        return {
            "inference": lambda: model.predict_on_batch(images),
            "training": lambda: model.train_on_batch(images, labels),
        }

    return device, memory, threads, build


def _timm_steps(spec):
    """`(device, memory, threads, build)` for the timm twins, on CUDA when PyTorch sees a GPU."""
    import timm
    import torch
    from keras_se.benchmarks.models import BENCH_MODELS

    threads = _set_threads(spec)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    device_name, memory = (
        (torch.cuda.get_device_name(), _torch_memory(torch))
        if cuda
        else (_cpu_name(), HostMemory())
    )
    images, labels = _batch(spec, channels_first=True)
    images = torch.from_numpy(images).to(device).contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(labels).long().to(device)
    dtype = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(
        spec["precision"]
    )

    def autocast():
        return torch.autocast(device, dtype=dtype, enabled=dtype is not None)

    def build(name):
        model = timm.create_model(BENCH_MODELS[name].timm_name, pretrained=False)
        model = model.to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)

        def infer():
            model.eval()
            with torch.inference_mode(), autocast():
                return model(images).float().cpu()

        def train():
            model.train()
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            return loss.item()

        return {"inference": infer, "training": train}

    return device_name, memory, threads, build


def _timed(step, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return time.perf_counter() - start


def measure(spec):
    """Measure every model of `spec["models"]` in every mode, interleaved as described above.

    Returns:
        `{"device": ..., "threads": ..., "results": {model: {mode: {"first_step_s",
        "images_per_s", "peak_memory_mb", "memory"}}}}`.

    Example:
    >>> spec = dict(models=["PlainMobileNet", "SEMobileNet"], runtime="tensorflow",
    ...             modes=["inference"], batch_size=2, image_size=32, warmup=1, iterations=1,
    ...             repeats=2, precision="float32", threads=None)
    >>> results = measure(spec)["results"]
    >>> len(results["SEMobileNet"]["inference"]["images_per_s"])
    2
    """
    steps_for = _timm_steps if spec["runtime"] == "timm" else _keras_steps
    device, memory, threads, build = steps_for(spec)
    steps, firsts = {}, {}
    for name in spec["models"]:
        steps[name] = build(name)
        for mode in spec["modes"]:
            start = time.perf_counter()
            steps[name][mode]()
            firsts[name, mode] = time.perf_counter() - start
            for _ in range(spec["warmup"] - 1):
                steps[name][mode]()
    results = {name: {} for name in spec["models"]}
    for mode in spec["modes"]:
        rates = {name: [] for name in spec["models"]}
        growth = dict.fromkeys(spec["models"], 0)
        for round_ in range(spec["repeats"]):
            shift = round_ % len(spec["models"])
            for name in spec["models"][shift:] + spec["models"][:shift]:
                memory.reset_peak()
                before = memory.current()
                seconds = _timed(steps[name][mode], spec["iterations"])
                rates[name].append(spec["batch_size"] * spec["iterations"] / seconds)
                growth[name] = max(growth[name], memory.peak() - before)
        for name in spec["models"]:
            results[name][mode] = dict(
                first_step_s=firsts[name, mode],
                images_per_s=rates[name],
                peak_memory_mb=growth[name] / 2**20,
                memory=memory.kind,
            )
    return {"device": device, "threads": threads, "results": results}


def main(argv=None):
    """Measure the spec given as JSON in `argv[0]` and print `RESULT {json}`."""
    spec = json.loads((argv or sys.argv[1:])[0])
    print(RESULT_PREFIX + json.dumps(measure(spec)), flush=True)


if __name__ == "__main__":
    main()
