"""Start-up time of the `keras-se` console script (benchmarks/RESULTS.md).

`python benchmarks/cli_startup.py` times `keras-se --help`, an argument error, `keras-se info`
(which imports Keras and TensorFlow) and `import keras_se` (what `--help` cost before the
console script deferred that import), interleaved, and prints a Markdown table of medians.

Example:
>>> import sys
>>> table = startup_table({"python": [sys.executable, "-c", "pass"]}, runs=1)
>>> table.startswith("| python | ") and table.endswith(" s |")
True
"""

import os
import shutil
import statistics
import subprocess
import sys
import time


def default_commands():
    """The commands RESULTS.md reports: `{label: argv}`.

    Example:
    >>> list(default_commands())[0]
    '`keras-se --help`'
    """
    script = shutil.which("keras-se", path=os.path.dirname(sys.executable)) or "keras-se"
    return {
        "`keras-se --help`": [script, "--help"],
        "`keras-se train --epochs x` (an argument error)": [script, "train", "--epochs", "x"],
        "`keras-se info` (imports Keras and TensorFlow)": [script, "info"],
        '`python -c "import keras_se"` (what `--help` cost before)': [
            sys.executable,
            "-c",
            "import keras_se",
        ],
    }


def startup_table(commands, runs=7):
    """Median wall time of `runs` runs of each command, interleaved, as Markdown table rows.

    Example:
    >>> startup_table({"true": ["true"]}, runs=3).count("|")
    3
    """
    times = {label: [] for label in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=False)
            times[label].append(time.perf_counter() - start)
    return "\n".join(
        f"| {label} | {statistics.median(values):.2f} s |" for label, values in times.items()
    )


if __name__ == "__main__":
    print(startup_table(default_commands()))
