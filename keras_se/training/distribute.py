"""Choosing and configuring a `tf.distribute` strategy for the training job.

Create the strategy first, before any other TensorFlow work: the multi-worker strategy
configures collective ops at program start-up.
"""

import json
import os

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")
TASK_TYPES = ("chief", "worker")
TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
    '"index": 0}}'
)


def _tf_config_error(problem):
    return ValueError(
        f"TF_CONFIG {problem}. --strategy multi-worker needs TF_CONFIG set on every worker to "
        f"JSON like {TF_CONFIG_EXAMPLE}, with this worker's own task index."
    )


def _check_address(address):
    host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _tf_config_error(f"lists the address {address!r}, which is not 'host:port'")


def read_tf_config(environ=None):
    """Parse and check the `TF_CONFIG` environment variable of a multi-worker run.

    Returns:
        The parsed dict: `cluster` maps `chief`/`worker` to lists of `host:port`, and `task`
        names this process's `type` and `index` in it.

    Example:
    >>> config = read_tf_config({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, '
    ...                          '"task": {"type": "worker", "index": 1}}'})
    >>> config["task"]
    {'type': 'worker', 'index': 1}
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        raise _tf_config_error("is not set")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise _tf_config_error(f"is not valid JSON ({error}): {text!r}") from None
    if not isinstance(config, dict) or set(config) - {"cluster", "task", "rpc_layer"}:
        raise _tf_config_error(f"must hold 'cluster' and 'task' only, got {text!r}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster or set(cluster) - set(TASK_TYPES):
        raise _tf_config_error(f"needs a 'cluster' of {' and '.join(TASK_TYPES)} lists")
    for addresses in cluster.values():
        if not isinstance(addresses, list) or not addresses:
            raise _tf_config_error(f"cluster entries must be non-empty lists, got {addresses!r}")
        for address in addresses:
            _check_address(address)
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise _tf_config_error(f"needs a 'task' whose type is one of {sorted(cluster)}")
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _tf_config_error(f"task index must be an integer, got {index!r}")
    if not 0 <= index < len(cluster[task["type"]]):
        raise _tf_config_error(
            f"task index {index} is out of range for {len(cluster[task['type']])} "
            f"{task['type']} address(es)"
        )
    return config


def worker_role(tf_config):
    """`(is_chief, worker_id)` of this process in a parsed TF_CONFIG.

    The chief is the `chief` task, or worker 0 when the cluster has no chief.

    Example:
    >>> worker_role({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker",
    ...              "index": 1}})
    (False, 'worker-1')
    """
    task_type, index = tf_config["task"]["type"], tf_config["task"]["index"]
    chief = task_type == "chief" or ("chief" not in tf_config["cluster"] and index == 0)
    return chief, f"{task_type}-{index}"


def make_strategy(name="auto"):
    """A `tf.distribute.Strategy` by name.

    - `auto`: MirroredStrategy over all GPUs when there are several, else one device (the
      GPU, or the CPU).
    - `one-device`: the first GPU, or the CPU.
    - `mirrored`: MirroredStrategy over all GPUs, or over all logical CPU devices when there
      is no GPU (one replica unless several were configured).
    - `multi-worker`: MultiWorkerMirroredStrategy configured by `TF_CONFIG` (checked first);
      applies `keras_se.training.keras_compat`'s fix so that Keras' `fit` works under it.

    Example:
    >>> make_strategy("one-device").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {', '.join(STRATEGIES)}, got {name!r}.")
    tf_config = read_tf_config() if name == "multi-worker" else None
    import tensorflow as tf

    if tf_config is not None:
        from keras_se.training import keras_compat

        keras_compat.apply_multi_worker_fit_fix()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = gpus or [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")


def check_batch_size(batch_size, strategy):
    """Return the per-replica batch size; the global `batch_size` must split evenly.

    Example:
    >>> check_batch_size(64, make_strategy("one-device"))
    64
    """
    replicas = strategy.num_replicas_in_sync
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if batch_size % replicas:
        raise ValueError(
            f"`batch_size` {batch_size} is the global batch and must be divisible by the "
            f"{replicas} replicas in sync; use e.g. {max(1, batch_size // replicas) * replicas}."
        )
    return batch_size // replicas
