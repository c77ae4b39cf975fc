"""Peak memory and time of `keras-se export`, per model and format (benchmarks/RESULTS.md).

`python benchmarks/export_memory.py [MODEL ...] [--formats onnx,tflite,saved_model]` saves
each model (random weights, 224x224, 1000 classes) as a `.keras` file, then runs
`keras-se export` on it in a fresh process per format and reports the process's peak
resident memory (the kernel's `ru_maxrss` of the child, so it counts every copy the
converters make) and its wall time, as Markdown table rows.

Example:
>>> row = export_row("SEResNet50", "onnx", peak_bytes=2.5e9, seconds=41.0)
>>> row
'| SEResNet50 | onnx | 2.50 GB | 41 s |'
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FORMATS = ("onnx", "tflite", "saved_model")
DEFAULT_MODELS = ("SEResNet50", "SENet154")


def export_row(model, format, *, peak_bytes, seconds):
    """One Markdown table row."""
    return f"| {model} | {format} | {peak_bytes / 1e9:.2f} GB | {seconds:.0f} s |"


def _save(model_name, folder):
    """Save the model in a subprocess, so that its memory does not count in the exports'."""
    path = folder / f"{model_name}.keras"
    code = (
        "import sys, keras_se\n"
        "from keras_se import applications\n"
        f"applications.model_entry({model_name!r}).constructor().save(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)
    return path


def measure(keras_file, format, output):
    """`(peak bytes, seconds)` of one `keras-se export` in a child process.

    `ru_maxrss` of `RUSAGE_CHILDREN` is the largest peak among the children waited for so
    far, so each export runs under a fresh intermediate process that reports its own child's.
    """
    script = shutil.which("keras-se", path=os.path.dirname(sys.executable)) or "keras-se"
    argv = [script, "export", str(keras_file), "--format", format, "--output", str(output)]
    code = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(peak * (1 if sys.platform == 'darwin' else 1024), seconds)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True
    )
    peak, seconds = result.stdout.split()
    return int(peak), float(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args(argv)
    formats = args.formats.split(",")
    print("| model | format | peak memory | time |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for model in args.models:
            keras_file = _save(model, folder)
            for format in formats:
                output = folder / f"{model}-{format}"
                if format != "saved_model":
                    output = output.with_suffix(f".{format}")
                peak, seconds = measure(keras_file, format, output)
                print(export_row(model, format, peak_bytes=peak, seconds=seconds), flush=True)
                if output.is_dir():
                    shutil.rmtree(output)
                else:
                    output.unlink()


if __name__ == "__main__":
    main()
