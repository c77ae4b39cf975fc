"""The benchmark's outputs: the text table, `results.csv`, `results.md` and `overhead.png`."""

import csv
import datetime
import importlib.metadata
import platform

from keras_se.benchmarks.models import BENCH_MODELS

CSV_COLUMNS = (
    "model",
    "plain_twin",
    "timm_name",
    "runtime",
    "mode",
    "images_per_s",
    "images_per_s_runs",
    "overhead_pct",
    "first_step_s",
    "peak_memory_mb",
    "memory",
    "device",
    "threads",
    "error",
)
GOALS_PCT = {"inference": 5.0, "training": 10.0}
_PACKAGES = ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "timm")


def _rate(measurement):
    if measurement.error:
        return "failed"
    text = f"{measurement.median:.1f}"
    if measurement.overhead_pct is not None:
        text += f" ({measurement.overhead_pct:+.1f}%)"
    return text


def progress_line(measurements):
    """One line per model of a worker: model, runtime and the median images/s of each mode.

    Example:
    >>> from keras_se.benchmarks.harness import Measurement
    >>> progress_line([Measurement("PlainResNet50", "jax", "inference", [9.0, 11.0])])
    'PlainResNet50 on jax: inference 10.0 img/s'
    """
    first = measurements[0]
    parts = [
        f"{m.mode} {_rate(m)} img/s" if not m.error else f"{m.mode} failed" for m in measurements
    ]
    line = f"{first.model} on {first.runtime}: {', '.join(parts)}"
    return line + (f" ({first.error})" if first.error else "")


def _runtimes(measurements):
    return list(dict.fromkeys(m.runtime for m in measurements))


def _cells(measurements, mode, text):
    """`{(model, runtime): text(measurement)}` for one mode, in measurement order."""
    return {(m.model, m.runtime): text(m) for m in measurements if m.mode == mode}


def _grid(cells, runtimes):
    """A header and one row per model: its cell for every runtime, `-` where it has none."""
    models = dict.fromkeys(model for model, _ in cells)
    return [["model", *runtimes]] + [
        [model, *(cells.get((model, r), "-") for r in runtimes)] for model in models
    ]


def table(measurements):
    """Images/s (median of the runs) per model and runtime, one block per mode; an attention
    model's cell also shows its overhead over the plain twin.

    Example:
    >>> from keras_se.benchmarks.harness import Measurement, add_overheads
    >>> rows = add_overheads([Measurement("PlainResNet50", "jax", "training", [100.0]),
    ...                       Measurement("SEResNet50", "jax", "training", [90.0])])
    >>> print(table(rows))
    training, images/s (SE overhead)
    model         | jax
    --------------+---------------
    PlainResNet50 | 100.0
    SEResNet50    | 90.0 (+11.1%)
    """
    runtimes = _runtimes(measurements)
    blocks = []
    for mode in dict.fromkeys(m.mode for m in measurements):
        rows = _grid(_cells(measurements, mode, _rate), runtimes)
        widths = [max(len(row[i]) for row in rows) + 1 for i in range(len(rows[0]))]
        lines = [f"{mode}, images/s (SE overhead)"]
        for index, row in enumerate(rows):
            lines.append("| ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
            if index == 0:
                lines.append("+-".join("-" * w for w in widths))
        blocks.append("\n".join(line.rstrip() for line in lines))
    return "\n\n".join(blocks)


def _markdown(rows):
    """A Markdown table of `_grid` rows, the numbers right-aligned."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|---|" + "---:|" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def machine_description(measurements):
    """The devices the workers ran on, the platform and the package versions.

    Example:
    >>> "python" in machine_description([])
    True
    """
    devices = sorted({m.device for m in measurements if m.device})
    versions = []
    for package in _PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return (
        f"device: {'; '.join(devices) or 'unknown'}; {platform.platform()}; "
        f"python {platform.python_version()}; {', '.join(versions)}"
    )


def write_csv(measurements, path):
    """One row per model, runtime and mode, with every timed run and the overhead.

    Example:
    >>> import tempfile, pathlib
    >>> from keras_se.benchmarks.harness import Measurement
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.csv"
    >>> write_csv([Measurement("SEResNet50", "jax", "inference", [1.0, 2.0])], path)
    >>> path.read_text().splitlines()[1]
    'SEResNet50,PlainResNet50,seresnet50,jax,inference,1.5,1.000;2.000,,,,,,,'
    """
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for m in measurements:
            model = BENCH_MODELS[m.model]
            writer.writerow(
                [
                    m.model,
                    model.plain_twin or "",
                    model.timm_name or "",
                    m.runtime,
                    m.mode,
                    "" if m.median is None else round(m.median, 3),
                    ";".join(f"{rate:.3f}" for rate in m.images_per_s),
                    "" if m.overhead_pct is None else round(m.overhead_pct, 2),
                    "" if m.first_step_s is None else round(m.first_step_s, 2),
                    "" if m.peak_memory_mb is None else round(m.peak_memory_mb, 1),
                    m.memory or "",
                    m.device or "",
                    "" if m.threads is None else m.threads,
                    m.error or "",
                ]
            )


def write_chart(measurements, path):
    """A bar chart of the SE overhead (percent) per attention model and runtime, one panel per
    mode, with the CPU goals of SE-ResNet-50 (5% inference, 10% training) drawn as lines.

    Example:
    >>> import tempfile, pathlib
    >>> from keras_se.benchmarks.harness import Measurement
    >>> rows = [Measurement("SEResNet50", "jax", "inference", [1.0], overhead_pct=3.0)]
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "overhead.png"
    >>> write_chart(rows, path)
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    modes = list(dict.fromkeys(m.mode for m in measurements))
    figure, axes = pyplot.subplots(1, len(modes), figsize=(6 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        rows = [m for m in measurements if m.mode == mode and m.overhead_pct is not None]
        models = list(dict.fromkeys(m.model for m in rows))
        runtimes = list(dict.fromkeys(m.runtime for m in rows))
        width = 0.8 / max(len(runtimes), 1)
        for index, runtime in enumerate(runtimes):
            values = {m.model: m.overhead_pct for m in rows if m.runtime == runtime}
            positions = [i + index * width for i, model in enumerate(models) if model in values]
            ax.bar(positions, [values[m] for m in models if m in values], width, label=runtime)
        ax.axhline(GOALS_PCT[mode], color="black", linestyle="--", linewidth=1, label="goal")
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.set_xticks([i + width * (len(runtimes) - 1) / 2 for i in range(len(models))])
        labels = [f"{model}\nvs {BENCH_MODELS[model].plain_twin}" for model in models]
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("extra time per image (%)")
        ax.set_title(f"{mode}: overhead over the plain twin (goal {GOALS_PCT[mode]:g}%)")
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def write_markdown(measurements, path, *, settings, command):
    """`results.md`: the command, the settings, the machine and the tables.

    Example:
    >>> import tempfile, pathlib
    >>> from keras_se.benchmarks.harness import Measurement
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.md"
    >>> rows = [Measurement("PlainResNet50", "jax", "training", [9.5], peak_memory_mb=812.0)]
    >>> write_markdown(rows, path, settings={"batch_size": 8}, command="keras-se bench")
    >>> print(path.read_text().split("## Training")[1])
    : images/s, median of the runs (SE overhead)
    <BLANKLINE>
    | model | jax |
    |---|---:|
    | PlainResNet50 | 9.5 |
    <BLANKLINE>
    ## Peak working memory of a training step (MiB)
    <BLANKLINE>
    | model | jax |
    |---|---:|
    | PlainResNet50 | 812 |
    <BLANKLINE>
    """
    when = datetime.date.today().isoformat()
    settings_text = ", ".join(f"{k} {v}" for k, v in settings.items())
    sections = [
        "# keras-se benchmark results",
        f"Taken {when} with `{command or 'keras_se.benchmarks.run_benchmarks(...)'}`.",
        f"Settings: {settings_text}.",
        f"Machine: {machine_description(measurements)}.",
    ]
    for mode in dict.fromkeys(m.mode for m in measurements):
        sections += [
            f"## {mode.capitalize()}: images/s, median of the runs (SE overhead)",
            _markdown(_grid(_cells(measurements, mode, _rate), _runtimes(measurements))),
        ]
    measured = [m for m in measurements if m.peak_memory_mb is not None]
    memory = _cells(measured, "training", lambda m: f"{m.peak_memory_mb:.0f}")
    if memory:
        sections += [
            "## Peak working memory of a training step (MiB)",
            _markdown(_grid(memory, _runtimes(measurements))),
        ]
    errors = [f"- {m.model} on {m.runtime} ({m.mode}): {m.error}" for m in measurements if m.error]
    if errors:
        sections += ["## Failed", "\n".join(errors)]
    path.write_text("\n\n".join(sections) + "\n")


def write_all(measurements, folder, *, settings, command):
    """Write `results.csv`, `results.md` and `overhead.png` into `folder` (created).

    Example:
    >>> import tempfile, pathlib
    >>> from keras_se.benchmarks.harness import Measurement
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "bench"
    >>> write_all([Measurement("PlainResNet50", "jax", "training", [9.5])], folder,
    ...           settings={}, command=None)
    >>> sorted(path.name for path in folder.iterdir())
    ['overhead.png', 'results.csv', 'results.md']
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(measurements, folder / "results.csv")
    write_markdown(measurements, folder / "results.md", settings=settings, command=command)
    write_chart(measurements, folder / "overhead.png")
