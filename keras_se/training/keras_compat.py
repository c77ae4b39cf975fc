"""The one compatibility fix keras-se carries: Keras 3 `fit` under MultiWorkerMirroredStrategy.

keras-team/keras#20585: on the TensorFlow backend, `model.fit` under
`tf.distribute.MultiWorkerMirroredStrategy` fails in two places of
`keras/src/backend/tensorflow/trainer.py`:

1. `TensorFlowTrainer._maybe_symbolic_build` averages the first *data batch* across the
   workers with `strategy.reduce("MEAN", batch, axis=None)` only to learn its shapes. Under
   the multi-worker strategy that is a collective over integer labels and images that fails
   (or hangs). The fix builds from the first local replica's batch instead: the shapes are
   the same.
2. `reduce_per_replica` averages every metric with `strategy.reduce("MEAN", v, axis=0)`;
   the metrics are scalars, which have no axis 0. The fix reduces rank-0 values with
   `axis=None`, and leaves everything else to Keras.

Each fix is applied only while the installed Keras still contains the code it repairs
(checked on the source of the two functions), only once, and only by
`keras_se.training.distribute.make_strategy("multi-worker")`. A Keras release that fixes the bug
changes that code, the probes stop matching, and nothing is patched: this module can then
be deleted.
"""

import inspect

_BUILD_PROBE = 'data_batch=self.distribute_strategy.reduce("MEAN",'
_REDUCE_PROBE = 'returnstrategy.reduce("MEAN",v,axis=0)'


def _compact_source(function):
    return "".join(inspect.getsource(function).split())


def _trainer_module():
    from keras.src.backend.tensorflow import trainer

    return trainer


def needed_fixes(trainer=None):
    """The names of the fixes the installed Keras still needs: `build` and/or `reduce`.

    Example:
    >>> set(needed_fixes()) <= {"build", "reduce"}  # both with Keras 3.15
    True
    """
    trainer = trainer or _trainer_module()
    needed = []
    if _BUILD_PROBE in _compact_source(trainer.TensorFlowTrainer._maybe_symbolic_build):
        needed.append("build")
    if _REDUCE_PROBE in _compact_source(trainer.reduce_per_replica):
        needed.append("reduce")
    return needed


def _fix_build(trainer):
    import tensorflow as tf

    original = trainer.TensorFlowTrainer._maybe_symbolic_build

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if iterator is None or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: (
                    strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value
                ),
                next(batches),
            )
            break
        return original(self, iterator=None, data_batch=data_batch)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def _fix_reduce(trainer):
    import tensorflow as tf

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return original(values, strategy, reduction)

        def reduce(value):
            if value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    trainer.reduce_per_replica = reduce_per_replica


_FIXES = {"build": _fix_build, "reduce": _fix_reduce}


def apply_multi_worker_fit_fix(trainer=None):
    """Patch the installed Keras where it still needs it; return the fixes applied now.

    Idempotent: a patched function no longer matches its probe, so a second call applies
    nothing.

    Example:
    >>> apply_multi_worker_fit_fix()  # doctest: +SKIP
    ['build', 'reduce']
    """
    trainer = trainer or _trainer_module()
    applied = needed_fixes(trainer)
    for name in applied:
        _FIXES[name](trainer)
    return applied
