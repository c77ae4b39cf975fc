"""A small SE-ResNet for training tests, and a script that runs `keras_se.training.train` with it.

`python tests/training_job.py '{"output_dir": ...}' [FLAG...]` trains in a fresh process (for
the multi-worker and kill-and-resume tests); `split_cpu(N)` splits the CPU into N logical
devices, so that MirroredStrategy has N replicas. The flags:

    --deterministic      TensorFlow's op determinism
    --report-steps       print `STEP k` (k counted over the whole run) after each training step
    --kill MOMENT:N      SIGKILL this process at a moment of epoch N's commit: `writing` (its
                         weights file half written), `renamed` (its folder complete, `latest`
                         not switched yet) or `committed` (`latest` switched, nothing after)
"""

import functools
import json
import os
import signal
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


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at(moment, epoch):
    import keras

    from keras_se.training import checkpoint

    folder = f"epoch-{epoch:04d}"
    if moment == "writing":
        save_weights = keras.Model.save_weights

        def save_half(model, path, *args, **kwargs):
            save_weights(model, path, *args, **kwargs)
            if folder in str(path):
                os.truncate(path, os.path.getsize(path) // 2)
                _die()

        keras.Model.save_weights = save_half
        return
    link = checkpoint.link_atomically

    def link_then_die(path, target):
        if target == folder and moment == "renamed":
            _die()
        link(path, target)
        if target == folder and moment == "committed":
            _die()

    checkpoint.link_atomically = link_then_die


def _report_steps(steps_per_epoch):
    from keras_se.training import checkpoint

    batch_end = checkpoint.CrashSafeBackup.on_train_batch_end

    def report(self, batch, logs=None):
        batch_end(self, batch, logs)
        print(f"STEP {self._epoch * steps_per_epoch + batch + 1}", flush=True)

    checkpoint.CrashSafeBackup.on_train_batch_end = report


def main(argv):
    from keras_se.training import train

    options = json.loads(argv[0])
    flags = argv[1:]
    if "--deterministic" in flags:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if "--report-steps" in flags:
        _report_steps(options["steps_per_epoch"])
    if "--kill" in flags:
        moment, epoch = flags[flags.index("--kill") + 1].split(":")
        _kill_at(moment, int(epoch))
    result = train(SE_RESNET10, **options)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
