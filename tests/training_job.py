"""A small SE-ResNet for training tests, and a script that runs `keras_se.training.train` with it.

`python tests/training_job.py '{"output_dir": ...}'` trains in a fresh process (for the
multi-worker and kill-and-resume tests); `split_cpu(N)` splits the CPU into N logical devices,
so that MirroredStrategy has N replicas.
"""

import functools
import json
import sys

from keras_se.applications import ResNet

# SE-ResNet-10: one basic block per stage, the smallest member of the ResNet builder.
SE_RESNET10 = functools.partial(ResNet, (1, 1, 1, 1), block="basic", name="se_resnet10")


def split_cpu(count):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )


def main(argv):
    from keras_se.training import train

    options = json.loads(argv[0])
    result = train(SE_RESNET10, **options)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
