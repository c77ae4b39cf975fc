"""The `keras-se` command.

Example:
    keras-se info     # versions, Keras backend and devices
    keras-se demo     # train a small SE/SK network on the bundled digits, save and reload it
"""

import argparse
import importlib.metadata
import platform
import sys

BACKEND_PACKAGES = ("tensorflow", "tensorflow-cpu", "jax", "torch")


def _installed_version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _devices():
    import keras

    if keras.backend.backend() == "torch":  # keras.distribution.list_devices needs jax or tf
        import torch

        return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    return keras.distribution.list_devices()


def info():
    """Print versions, the active Keras backend and its devices.

    Example:
    >>> info()  # doctest: +SKIP
    keras-se 0.1.0 ...
    """
    import keras

    import keras_se

    print(f"keras-se   {keras_se.__version__}")
    print(f"python     {platform.python_version()}")
    print(f"keras      {keras.__version__}")
    for package in BACKEND_PACKAGES:
        print(f"{package:<10} {_installed_version(package) or 'not installed'}")
    print(f"backend    {keras.backend.backend()}")
    print(f"devices    {', '.join(_devices())}")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-se",
        description="Squeeze-and-Excitation and Selective Kernel layers for Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="print versions, backend and devices")
    demo = commands.add_parser("demo", help="train a small SE/SK network on the bundled digits")
    demo.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (15)")
    demo.add_argument("--batch-size", type=_positive_int, default=64, help="batch size (64)")
    demo.add_argument(
        "--output", default=None, help="folder for the .keras file (a new temp folder)"
    )
    return parser


def main(argv=None):
    """Entry point of the `keras-se` console script.

    Example:
    >>> main(["info"])  # doctest: +SKIP
    """
    args = build_parser().parse_args(argv)
    if args.command == "info":
        info()
        return 0
    from keras_se.demo import run_demo

    try:
        run_demo(epochs=args.epochs, batch_size=args.batch_size, output_dir=args.output)
    except (FileExistsError, ImportError) as error:
        print(f"keras-se demo: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
