"""The `keras-se` console script.

It lives outside the `keras_se` package so that `keras-se --help` and argument errors answer
at once: while this module is loaded first, `import keras_se` defers importing Keras (and with
it TensorFlow, seconds) until `keras_se.cli.main` has parsed the arguments and a command runs.

Example:
    keras-se --help    # the commands, without importing Keras
"""

import sys


def main():
    """Run `keras_se.cli.main` on this process's arguments (the console script's entry point)."""
    from keras_se import cli

    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
