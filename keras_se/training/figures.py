"""The figures the jobs write (learning curves, confusion matrices, attention plots):
matplotlib without a screen, each saved as a PNG in one atomic step."""

from keras_se import atomic


def pyplot():
    """matplotlib's pyplot on the Agg backend, which needs no screen.

    Example:
    >>> pyplot().get_backend().lower()
    'agg'
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_png(figure, path):
    """Lay `figure` out, write it to `path` as a PNG (atomically: a killed job leaves no half
    file there) and close it.

    Example:
    >>> import pathlib, tempfile
    >>> figure, axis = pyplot().subplots()
    >>> _ = axis.plot([0, 1], [1, 0])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "line.png"
    >>> save_png(figure, path)
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    figure.tight_layout()
    with atomic.atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=100)
    pyplot().close(figure)
