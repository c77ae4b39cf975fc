"""Throughput, SE overhead and memory benchmarks, installed as `keras_se.benchmarks`.

`keras-se bench` (see `harness.run_benchmarks`) measures every SE/SK model next to its plain
twin on each runtime, one worker process per model and runtime, and writes a table, a CSV
file and a chart of the SE overhead. `keras-se cost MODEL` prints a model's cost report
(`keras_se.cost`). The figures and how they were taken are in `benchmarks/RESULTS.md` of the
repository.

Example:
>>> from keras_se.benchmarks import BENCH_MODELS
>>> BENCH_MODELS["SEResNet50"].plain_twin
'PlainResNet50'
"""

from keras_se.benchmarks.models import ATTENTION_MODELS, BENCH_MODELS, BenchModel, build_model

__all__ = ["ATTENTION_MODELS", "BENCH_MODELS", "BenchModel", "build_model"]
