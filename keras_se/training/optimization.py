"""The training job's optimizer and learning-rate schedule, and its two phases of fine-tuning.

With `freeze_epochs` K > 0 (`keras-se train --weights ... --freeze-epochs K`) a run follows the
Keras transfer-learning guide: for K epochs only the classifier trains, on the frozen
pretrained layers (their BatchNorm layers in inference mode: frozen Keras BatchNorm uses its
moving statistics); then every layer trains at `FINE_TUNE_FACTOR` times the learning rate.
One optimizer, built on every variable, serves both phases, so a checkpoint of either phase
resumes into the same optimizer.
"""

import keras

from keras_se.applications.weights_file import classifier_layer
from keras_se.training.config import DEFAULT_WEIGHT_DECAY

FINE_TUNE_FACTOR = 0.1


def learning_rate_schedule(config, steps_per_epoch, *, fine_tuning=False):
    """The learning rate by global step, for the run or for one of its phases.

    Without frozen epochs: linear warm-up to the peak rate, then cosine decay to 0 at the end
    of the run. With them, the first phase decays to 0 at the end of the frozen epochs and the
    second (`fine_tuning=True`) starts at `FINE_TUNE_FACTOR` x the peak and decays to 0 at the
    end of the run (before it, the rate is constant: Keras' warm-up from a value to itself).

    Example:
    >>> from keras_se.training.config import TrainConfig
    >>> config = TrainConfig(epochs=4, warmup_epochs=0, freeze_epochs=2, weights="imagenet")
    >>> [round(float(learning_rate_schedule(config, 10, fine_tuning=f)(s)), 5)
    ...  for f, s in ((False, 0), (False, 20), (True, 20), (True, 40))]
    [0.025, 0.0, 0.0025, 0.0]
    """
    peak = config.peak_learning_rate
    total_steps = config.epochs * steps_per_epoch
    frozen_steps = config.freeze_epochs * steps_per_epoch
    if fine_tuning:
        low = FINE_TUNE_FACTOR * peak
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=low,
            decay_steps=max(1, total_steps - frozen_steps),
            warmup_target=low,
            warmup_steps=frozen_steps,
        )
    end = frozen_steps or total_steps
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else peak,
        decay_steps=max(1, end - warmup_steps),
        warmup_target=peak if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def make_optimizer(config, model, steps_per_epoch):
    """SGD with Nesterov momentum 0.9, or AdamW, on the run's schedule; no weight decay for
    BatchNorm scales and shifts and for biases (every variable of rank <= 1).

    Example:
    >>> from keras_se.training.config import TrainConfig
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> type(make_optimizer(TrainConfig(), model, 10)).__name__
    'SGD'
    """
    schedule = learning_rate_schedule(config, steps_per_epoch)
    weight_decay = (
        DEFAULT_WEIGHT_DECAY[config.optimizer]
        if config.weight_decay is None
        else config.weight_decay
    )
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True, weight_decay=weight_decay or None
        )
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    optimizer.exclude_from_weight_decay(
        var_list=[v for v in model.trainable_variables if len(v.shape) <= 1]
    )
    return optimizer


def phases(config, epochs_done):
    """What is left to train: `[(end epoch, frozen)]`, the frozen phase first.

    Example:
    >>> from keras_se.training.config import TrainConfig
    >>> config = TrainConfig(epochs=5, freeze_epochs=2, weights="imagenet")
    >>> phases(config, 0), phases(config, 3), phases(TrainConfig(epochs=5), 0)
    ([(2, True), (5, False)], [(5, False)], [(5, False)])
    """
    plan = []
    if epochs_done < config.freeze_epochs:
        plan.append((config.freeze_epochs, True))
    if config.epochs > config.freeze_epochs or not plan:
        plan.append((config.epochs, False))
    return plan


def enter_phase(model, config, steps_per_epoch, frozen):
    """Freeze (or unfreeze) every layer but the classifier, set the phase's schedule, and
    rebuild the training step, which Keras traces with the trainable variables it sees.

    Example:
    >>> from keras_se.training.config import TrainConfig
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3),
    ...                           keras.layers.Dense(1, name="predictions")])
    >>> model.compile(make_optimizer(TrainConfig(), model, 10), "mse")
    >>> enter_phase(model, TrainConfig(), 10, frozen=True)
    >>> [layer.trainable for layer in model.layers]
    [False, True]
    """
    classifier = classifier_layer(model)
    for layer in model.layers:
        if layer is not classifier:
            layer.trainable = not frozen
    model.optimizer.learning_rate = learning_rate_schedule(
        config, steps_per_epoch, fine_tuning=config.freeze_epochs > 0 and not frozen
    )
    model.make_train_function(force=True)
