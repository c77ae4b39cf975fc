"""`keras-se bench`: every SE/SK model next to its plain twin, on every runtime.

Runtimes: `tensorflow` (graph mode), `tensorflow-xla` (`jit_compile=True`), `jax`, `torch`
(the Keras backends) and `timm` (the same architecture in timm, the peer column). Each runtime
and group (a plain twin and its attention models) is measured by a worker process of its own
(`worker.py`), which interleaves the models' timed runs; the harness gathers the results,
computes the SE overhead of every attention model over its plain twin on the same
runtime and mode, prints the table and writes `results.csv`, `results.md` and `overhead.png`.
"""

import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from keras_se.benchmarks import report, worker
from keras_se.benchmarks.models import BENCH_MODELS

from keras_se.layers import common

RUNTIMES = ("tensorflow", "tensorflow-xla", "jax", "torch", "timm")
MODES = ("inference", "training")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
_RUNTIME_PACKAGES = {
    "tensorflow": ("tensorflow",),
    "tensorflow-xla": ("tensorflow",),
    "jax": ("jax",),
    "torch": ("torch",),
    "timm": ("torch", "timm"),
}
OUTPUT_FILES = ("results.csv", "results.md", "overhead.png")
MIN_IMAGE_SIZE = {"InceptionV3": 75, "SEInceptionV3": 75}


@dataclasses.dataclass
class Measurement:
    """One model on one runtime in one mode.

    Attributes:
        model: the benchmark model's name.
        runtime: one of `RUNTIMES`.
        mode: `"inference"` or `"training"`.
        images_per_s: images/s of every timed run (empty when the worker failed).
        first_step_s: seconds of the first step (tracing and compiling included).
        peak_memory_mb: peak working memory of a training or inference step in MiB (see
            `worker.py`); `memory` says where it was counted.
        memory: `"device"` or `"process RSS"`.
        device: the device it ran on.
        threads: the CPU threads TensorFlow or PyTorch used (None for JAX).
        overhead_pct: for an attention model, how much longer an image takes than on its
            plain twin in the same runtime and mode, in percent.
        error: why the worker failed, else None.

    Example:
    >>> Measurement("SEResNet50", "jax", "training", [10.0, 12.0, 11.0]).median
    11.0
    """

    model: str
    runtime: str
    mode: str
    images_per_s: list
    first_step_s: float | None = None
    peak_memory_mb: float | None = None
    memory: str | None = None
    device: str | None = None
    threads: int | None = None
    overhead_pct: float | None = None
    error: str | None = None

    @property
    def median(self):
        """The median images/s of the timed runs (None when the worker failed)."""
        return statistics.median(self.images_per_s) if self.images_per_s else None


def available_runtimes():
    """The runtimes whose packages are installed, in `RUNTIMES` order.

    Example:
    >>> set(available_runtimes()) <= set(RUNTIMES)
    True
    """
    return [
        runtime
        for runtime in RUNTIMES
        if all(importlib.util.find_spec(p) is not None for p in _RUNTIME_PACKAGES[runtime])
    ]


def _check_models(models):
    if isinstance(models, str) or not models:
        raise ValueError(f"`models` must be a non-empty list of model names, got {models!r}.")
    for model in models:
        common.check_choice("models", model, tuple(BENCH_MODELS))
    return list(models)


def _check_names(name, values, allowed):
    if isinstance(values, str) or not values:
        raise ValueError(f"`{name}` must be a non-empty list from {allowed}, got {values!r}.")
    for value in values:
        common.check_choice(name, value, allowed)
    return [value for value in allowed if value in values]


def _with_twins(models):
    """The models with their plain twins, each once, in benchmark order."""
    wanted = set(models) | {BENCH_MODELS[m].plain_twin for m in models} - {None}
    return [name for name in BENCH_MODELS if name in wanted]


def check_settings(
    models,
    runtimes,
    modes,
    *,
    batch_size,
    image_size,
    warmup,
    iterations,
    repeats,
    precision,
    threads,
    output_dir,
    overwrite,
):
    """Validate every argument of `run_benchmarks` and return the models to measure.

    Raises before anything is measured: `ValueError`/`TypeError` naming a bad argument,
    `ImportError` for a runtime or matplotlib that is not installed, `FileExistsError` when
    `output_dir` holds results and `overwrite` is False.

    Example:
    >>> check_settings(["SKNet50"], ["tensorflow"], ["inference"], batch_size=8,
    ...     image_size=224, warmup=1, iterations=2, repeats=3, precision="float32",
    ...     threads=None, output_dir="/nonexistent/bench", overwrite=False)
    ['PlainResNeXt50', 'SKNet50']
    """
    models = _with_twins(_check_models(models))
    _check_names("runtimes", runtimes, RUNTIMES)
    _check_names("modes", modes, MODES)
    for name, value in (
        ("batch_size", batch_size),
        ("image_size", image_size),
        ("iterations", iterations),
        ("repeats", repeats),
        ("warmup", warmup),
    ):
        common.check_int(name, value)
    common.check_int("threads", threads, allow_none=True)
    common.check_choice("precision", precision, PRECISIONS)
    for model in models:
        if image_size < MIN_IMAGE_SIZE.get(model, 32):
            raise ValueError(
                f"`image_size` must be at least {MIN_IMAGE_SIZE.get(model, 32)} for {model}, "
                f"got {image_size}."
            )
    installed = available_runtimes()
    for runtime in runtimes:
        if runtime not in installed:
            raise ImportError(
                f"runtime {runtime!r} needs {' and '.join(_RUNTIME_PACKAGES[runtime])} "
                f"installed; installed runtimes: {', '.join(installed) or 'none'}."
            )
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError("The overhead chart needs matplotlib: pip install 'keras-se[bench]'.")
    _check_output_folder(output_dir)
    existing = [f for f in OUTPUT_FILES if (Path(output_dir) / f).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds benchmark results ({', '.join(existing)}); pass "
            "overwrite=True (--overwrite) to replace them, or choose another output folder."
        )
    return models


def _check_output_folder(output_dir):
    """Raise unless `output_dir` is, or can become, a folder this user can write to, so that a
    benchmark never runs for an hour and then fails to save its results."""
    if not str(output_dir).strip():
        raise ValueError(f"`output_dir` must not be empty, got {output_dir!r}.")
    existing = Path(output_dir).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(
            f"`output_dir` {str(output_dir)!r} cannot be a folder: {str(existing)!r} is a file."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"`output_dir` {str(output_dir)!r} is not writable: {str(existing)!r} is read-only "
            "for this user."
        )


def _run_worker(spec, timeout):
    """The worker's result for `spec`, or `{"error": ...}` when it fails."""
    runtime = spec["runtime"]
    # timm's worker imports keras-se for the model table: on the torch backend Keras loads no
    # TensorFlow, whose LLVM clashes with Triton's when timm is imported after it.
    backend = {"tensorflow-xla": "tensorflow", "timm": "torch"}.get(runtime, runtime)
    env = {**os.environ, "KERAS_BACKEND": backend}
    command = [sys.executable, "-m", "keras_se.benchmarks.worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith(worker.RESULT_PREFIX):
            return json.loads(line.removeprefix(worker.RESULT_PREFIX))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {"error": f"exit {done.returncode}: {lines[-1] if lines else 'no output'}"}


def _measurements(group, runtime, modes, result):
    if "error" in result:
        return [
            Measurement(model, runtime, mode, [], error=result["error"])
            for model in group
            for mode in modes
        ]
    return [
        Measurement(
            model,
            runtime,
            mode,
            values["images_per_s"],
            first_step_s=values["first_step_s"],
            peak_memory_mb=values["peak_memory_mb"],
            memory=values["memory"],
            device=result["device"],
            threads=result["threads"],
        )
        for model in group
        for mode, values in result["results"][model].items()
    ]


def groups(models, runtime):
    """The workers' groups: each plain twin with the attention models measured against it.

    timm measures only the models that have a timm twin.

    Example:
    >>> groups(["PlainResNet50", "PlainResNeXt50", "SEResNet50", "SKNet50"], "jax")
    [['PlainResNet50', 'SEResNet50'], ['PlainResNeXt50', 'SKNet50']]
    >>> groups(["PlainMobileNet", "SEMobileNet"], "timm")
    [['PlainMobileNet']]
    """
    if runtime == "timm":
        models = [m for m in models if BENCH_MODELS[m].timm_name]
    by_twin = {}
    for model in models:
        by_twin.setdefault(BENCH_MODELS[model].plain_twin or model, []).append(model)
    return list(by_twin.values())


def add_overheads(measurements):
    """Set `overhead_pct` of every attention model's measurement against its plain twin's.

    Example:
    >>> rows = [Measurement("PlainResNet50", "jax", "inference", [100.0]),
    ...         Measurement("SEResNet50", "jax", "inference", [80.0])]
    >>> add_overheads(rows)[1].overhead_pct
    25.0
    """
    rates = {(m.model, m.runtime, m.mode): m.median for m in measurements}
    for m in measurements:
        twin = BENCH_MODELS[m.model].plain_twin
        plain = rates.get((twin, m.runtime, m.mode))
        if twin and plain and m.median:
            m.overhead_pct = 100.0 * (plain / m.median - 1.0)
    return measurements


def run_benchmarks(
    models,
    runtimes=None,
    modes=MODES,
    *,
    batch_size=16,
    image_size=224,
    warmup=2,
    iterations=3,
    repeats=3,
    precision="float32",
    threads=None,
    output_dir="bench-results",
    overwrite=False,
    timeout=3600,
    command=None,
    log=print,
):
    """Measure `models` and their plain twins on `runtimes`; write and return the results.

    Args:
        models: benchmark model names (`BENCH_MODELS`); each attention model brings its plain
            twin.
        runtimes: from `RUNTIMES`; None for every installed one. `timm` skips models without
            a timm twin.
        modes: `"inference"` and/or `"training"`.
        batch_size: images per step.
        image_size: square input size.
        warmup: untimed steps before the runs (the first one compiles).
        iterations: steps per timed run.
        repeats: timed runs; the table shows their median.
        precision: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"` (timm: autocast).
        threads: CPU threads of TensorFlow and PyTorch (None: their default, every core).
        output_dir: folder for `results.csv`, `results.md` and `overhead.png`.
        overwrite: replace results already in `output_dir`.
        timeout: seconds one worker may take.
        command: the command line to record in `results.md`.
        log: called with one line of progress per model and runtime, and with the table.

    Returns:
        The list of `Measurement`s, overheads filled in.

    Example:
    >>> rows = run_benchmarks(["SEMobileNet"], ["jax"], ["inference"], batch_size=2,
    ...     image_size=32, warmup=1, iterations=1, repeats=1, output_dir="bench-demo",
    ...     log=lambda line: None)  # doctest: +SKIP
    >>> [(m.model, m.overhead_pct is not None) for m in rows]  # doctest: +SKIP
    [('PlainMobileNet', False), ('SEMobileNet', True)]
    """
    runtimes = available_runtimes() if runtimes is None else runtimes
    settings = dict(
        batch_size=batch_size,
        image_size=image_size,
        warmup=warmup,
        iterations=iterations,
        repeats=repeats,
        precision=precision,
        threads=threads,
    )
    models = check_settings(
        models, runtimes, modes, output_dir=output_dir, overwrite=overwrite, **settings
    )
    measurements = []
    # One worker per runtime and group, which interleaves the models' timed runs.
    for runtime in runtimes:
        for group in groups(models, runtime):
            spec = dict(models=group, runtime=runtime, modes=list(modes), **settings)
            rows = _measurements(group, runtime, modes, _run_worker(spec, timeout))
            for model in group:
                log(report.progress_line([m for m in rows if m.model == model]))
            measurements.extend(rows)
    add_overheads(measurements)
    settings["threads"] = threads or "default"
    report.write_all(measurements, Path(output_dir), settings=settings, command=command)
    log(report.table(measurements))
    return measurements
