"""`keras-se inspect`: what the SE gates and SK branch weights of a trained model do on a
labelled split, in the figures of the papers' analysis sections.

Reads the model and its images as `keras-se evaluate` does (`trained.labelled_batches`) and
writes, atomically, into the `inspection-SPLIT/` folder next to the model by default:

- `statistics.csv`: per attention layer, in model order, the mean, spread and fraction
  saturated of its gates, and how much they differ between classes (`class_spread`);
- `class_excitation.csv` and `excitation.png` (models with SE layers): the mean gate of
  every channel per class for the SE layers shown, and those curves, one panel per layer
  (SENet, Fig. 6);
- `sk_scale.png` (models with SK layers): the attention on the branch with the largest
  receptive field as the images are enlarged (SKNet, Figs. 3-4);
- `attention.json`: all of the above numbers, and the SK means per scale and branch.
"""

import csv
import io
import json
import pathlib

import numpy as np

from keras_se import atomic
from keras_se import inspect as attention_inspect
from keras_se.layers import SelectiveKernel, SqueezeExcite, common
from keras_se.training import figures
from keras_se.training.trained import SPLITS, labelled_batches, open_trained_model

FIGURE_LAYERS = 6  # SE layers shown by default, spread over the depth (the paper shows 6)
DEFAULT_BATCHES = 8  # `keras-se inspect --help` says "(8)"
SUMMARY_ROWS = 12  # layers in the printed table; statistics.csv has every one
CLASS_CURVES = 10  # classes drawn in each excitation panel, besides the mean of all images
RESULTS_FILE = "attention.json"


def spread_over_depth(names, count=FIGURE_LAYERS):
    """At most `count` of `names`, evenly spaced, the first and the last included.

    Example:
    >>> spread_over_depth([f"se{i}" for i in range(16)], 4)
    ['se0', 'se5', 'se10', 'se15']
    """
    names = list(names)
    if len(names) <= count:
        return names
    picks = np.unique(np.round(np.linspace(0, len(names) - 1, count)).astype(int))
    return [names[i] for i in picks]


def _shown_layers(model, layers):
    """The SE layers (with channel gates) and SK layers the figures show, by name."""
    chosen = attention_inspect.chosen_layers(model, layers)
    se = [
        name
        for name, layer in chosen.items()
        if isinstance(layer, SqueezeExcite) and layer.mode != "spatial"
    ]
    sk = [name for name, layer in chosen.items() if isinstance(layer, SelectiveKernel)]
    return (se if layers else spread_over_depth(se)), sk


def inspect_model(
    model,
    dataset=None,
    *,
    split="validation",
    data_dir=None,
    layers=None,
    scales=None,
    max_batches=DEFAULT_BATCHES,
    batch_size=64,
    output_dir=None,
    overwrite=False,
):
    """Inspect the attention of a trained model on a labelled split and write the results.

    Args:
        model: a `keras-se train` run folder or its `model.keras`, or a keras-se ImageNet
            classifier saved as `.keras` (as for `keras-se evaluate`).
        dataset: a TFDS name or image folder with the model's classes (by default the run's
            own, split as the run split it).
        split: `"validation"` or `"train"`.
        data_dir: TFDS data folder (by default the run's).
        layers: names of the attention layers the figures and `class_excitation.csv` show
            (None: 6 SE layers spread over the depth and every SK layer); the statistics
            cover every attention layer.
        scales: enlargements for the SK analysis (None: 1, 1.5 and 2 when the model has SK
            layers; given for a model without any, an error).
        max_batches: batches of the split to inspect (the attention is kept per image).
        batch_size: images per batch.
        output_dir: where the files go (default: the run folder's `inspection-SPLIT/`).
        overwrite: replace the files of an earlier inspection there.

    Returns:
        The `attention.json` dict.

    Example:
    >>> inspect_model("runs/SEResNet18-sklearn_digits")["images"]  # doctest: +SKIP
    449
    """
    common.check_choice("split", split, SPLITS)
    batch_size = common.check_int("batch_size", batch_size)
    max_batches = common.check_int("max_batches", max_batches)
    if scales is not None:
        scales = attention_inspect.check_scales(scales)
    trained = open_trained_model(model)
    output_dir = pathlib.Path(output_dir or trained.path.parent / f"inspection-{split}")
    results = output_dir / RESULTS_FILE
    if results.exists() and not overwrite:
        raise FileExistsError(
            f"{results} holds an earlier inspection; pass --overwrite (overwrite=True) to "
            "replace it, or another output folder."
        )
    shown_se, shown_sk = _shown_layers(trained.model, layers)
    if scales is not None and not shown_sk:
        raise ValueError(
            f"`scales` {list(scales)} is for the SelectiveKernel layers, and the inspected "
            "layers of the model have none: leave --scales out."
        )
    name, batches = labelled_batches(trained, dataset, split, data_dir, batch_size)
    found = attention_inspect.attention(trained.model, batches, max_batches=max_batches)
    classes = list(trained.class_names)
    per_class = attention_inspect.class_excitation(found, num_classes=len(classes))
    report = {
        "model": str(trained.path),
        "output": str(output_dir),
        "dataset": name,
        "split": split,
        "images": found.count,
        "class_names": classes,
        "images_per_class": np.bincount(found.labels, minlength=len(classes)).tolist(),
        "statistics": attention_inspect.gate_statistics(found),
        "shown": {"squeeze_excite": shown_se, "selective_kernel": shown_sk},
        "class_excitation": {
            layer: [None if np.isnan(row[0]) else row.tolist() for row in per_class[layer]]
            for layer in shown_se
        },
        "files": ["statistics.csv"]
        + (["class_excitation.csv", "excitation.png"] if shown_se else []),
    }
    if shown_sk:
        _, batches = labelled_batches(trained, dataset, split, data_dir, batch_size)
        scale = attention_inspect.scale_attention(
            trained.model,
            batches,
            scales=scales or attention_inspect.DEFAULT_SCALES,
            layers=shown_sk,
            max_batches=max_batches,
        )
        report["scale"] = _scale_report(scale)
        report["files"].append("sk_scale.png")
    report["files"].append(RESULTS_FILE)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(output_dir / "statistics.csv", report["statistics"])
    if shown_se:
        _write_csv(
            output_dir / "class_excitation.csv",
            [
                {"layer": layer, "class": classes[index], "channel": channel, "mean_gate": value}
                for layer in shown_se
                for index, row in enumerate(per_class[layer])
                if not np.isnan(row[0])
                for channel, value in enumerate(row.tolist())
            ],
        )
        plot_excitation(report, output_dir / "excitation.png")
    if shown_sk:
        plot_scale_attention(report["scale"], output_dir / "sk_scale.png")
    atomic.write_text_atomically(results, json.dumps(report, indent=1))
    return report


def _scale_report(scale):
    return {
        "scales": list(scale.scales),
        "images": scale.count,
        "layers": {
            name: {
                "large_branch": scale.large_branch[name],
                "branch_means": means.mean(axis=-1).tolist(),  # (scales, branches)
                "large_branch_channels": means[:, scale.large_branch[name]].tolist(),
                "large_branch_attention": scale.large_branch_attention(name).tolist(),
                "rises": scale.rises(name),
            }
            for name, means in scale.means.items()
        },
    }


def _write_csv(path, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text_atomically(path, text.getvalue())


def plot_excitation(report, path):
    """The mean excitation of every channel per class, one panel per SE layer shown (the
    SENet paper's Fig. 6): the classes with the most images, and all images in black.

    Example:
    >>> import tempfile
    >>> report = {"class_names": ["a", "b"], "images_per_class": [2, 1],
    ...           "shown": {"squeeze_excite": ["se"]},
    ...           "class_excitation": {"se": [[0.2, 0.9], [0.4, 0.5]]}}
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "excitation.png"
    >>> plot_excitation(report, path)
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    pyplot = figures.pyplot()
    layers = report["shown"]["squeeze_excite"]
    counts = np.asarray(report["images_per_class"])
    drawn = [i for i in np.argsort(-counts, kind="stable")[:CLASS_CURVES] if counts[i]]
    columns = min(3, max(1, len(layers)))
    rows = max(1, -(-len(layers) // columns))
    figure, axes = pyplot.subplots(rows, columns, figsize=(5 * columns, 3.4 * rows), squeeze=False)
    for axis, layer in zip(axes.flat, layers, strict=False):
        curves = report["class_excitation"][layer]
        for index in drawn:
            axis.plot(curves[index], linewidth=0.8, label=report["class_names"][index])
        present = np.array([row for row in curves if row is not None])
        weights = counts[[i for i, row in enumerate(curves) if row is not None]]
        overall = (present * weights[:, None]).sum(axis=0) / weights.sum()
        axis.plot(overall, color="black", linewidth=1.2, linestyle="--", label="all")
        axis.set_title(layer, fontsize=9)
        axis.set_xlabel("channel index")
        axis.set_ylabel("mean activation")
        axis.set_ylim(-0.02, 1.02)
    for axis in list(axes.flat)[len(layers) :]:
        axis.axis("off")
    if layers:
        axes.flat[0].legend(fontsize=6, ncol=2)
    figures.save_png(figure, path)


def plot_scale_attention(scale, path):
    """The SK attention on the largest-receptive-field branch at each scale: the mean of
    every SK layer (the SKNet paper's Fig. 4) and, per channel, that of the last (Fig. 3).

    Example:
    >>> import tempfile
    >>> scale = {"scales": [1.0, 2.0], "layers": {"sk": {
    ...     "large_branch_attention": [0.4, 0.6],
    ...     "large_branch_channels": [[0.3, 0.5], [0.5, 0.7]]}}}
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sk_scale.png"
    >>> plot_scale_attention(scale, path)
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    pyplot = figures.pyplot()
    names = list(scale["layers"])
    figure, (by_layer, by_channel) = pyplot.subplots(1, 2, figsize=(12, 4))
    for index, value in enumerate(scale["scales"]):
        by_layer.plot(
            [scale["layers"][name]["large_branch_attention"][index] for name in names],
            marker="o",
            label=f"{value:g}x",
        )
        by_channel.plot(
            scale["layers"][names[-1]]["large_branch_channels"][index],
            linewidth=0.8,
            label=f"{value:g}x",
        )
    by_layer.set_xticks(range(len(names)), names, rotation=60, fontsize=7, ha="right")
    by_layer.set_ylabel("mean attention, largest kernel")
    by_layer.set_title("SK layers by depth")
    by_channel.set_xlabel("channel index")
    by_channel.set_ylabel("attention, largest kernel")
    by_channel.set_title(names[-1], fontsize=9)
    for axis in (by_layer, by_channel):
        axis.legend(title="object scale", fontsize=7)
    figures.save_png(figure, path)


def format_summary(report):
    """The one-screen text summary of an inspection (`inspect_model`'s report).

    Example:
    >>> report = {"dataset": "digits", "split": "validation", "images": 3, "model": "m",
    ...     "output": "out",
    ...     "statistics": [{"layer": "se", "kind": "squeeze_excite", "channels": 8,
    ...     "mean": 0.5, "std": 0.1, "saturated": 0.0, "class_spread": 0.02}],
    ...     "files": ["attention.json"]}
    >>> print(format_summary(report))
    digits validation: 3 images through 1 attention layers of m
    layer                            kind channels   mean    std saturated class-spread
    se                               SE          8  0.500  0.100     0.000        0.020
    wrote attention.json to out
    """
    rows = report["statistics"]
    lines = [
        f"{report['dataset']} {report['split']}: {report['images']} images through "
        f"{len(rows)} attention layers of {report['model']}",
        f"{'layer':<32} kind channels   mean    std saturated class-spread",
    ]
    listed = spread_over_depth([row["layer"] for row in rows], SUMMARY_ROWS)
    for row in rows:
        if row["layer"] not in listed:
            continue
        spread = "" if row["class_spread"] is None else f"{row['class_spread']:.3f}"
        channels = "" if row["channels"] is None else row["channels"]
        kind = "SE" if row["kind"] == "squeeze_excite" else "SK"
        lines.append(
            f"{row['layer'][:32]:<32} {kind:<4} {channels:>8} {row['mean']:6.3f} "
            f"{row['std']:6.3f} {row['saturated']:9.3f} {spread:>12}"
        )
    if len(rows) > len(listed):
        lines.append(f"... {len(rows) - len(listed)} more layers in statistics.csv")
    if "scale" in report:
        scales = ", ".join(f"{value:g}x" for value in report["scale"]["scales"])
        rising = [name for name, found in report["scale"]["layers"].items() if found["rises"]]
        lines.append(
            f"SK attention on the largest kernel at {scales}: rises with scale in "
            f"{len(rising)} of {len(report['scale']['layers'])} SK layers (sk_scale.png)"
        )
    lines.append(f"wrote {', '.join(report['files'])} to {report['output']}")
    return "\n".join(lines)
