"""Choosing a tf.distribute strategy by name, as tensorflow/models' get_distribution_strategy."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from skyseg_tf.training.config import STRATEGIES


def get_distribution_strategy(name: str = "auto", devices=None) -> tf.distribute.Strategy:
    """Returns the strategy for ``name``.

    - ``"auto"``: ``MirroredStrategy`` over all GPUs when there are several, the one GPU when
      there is one, else the CPU; ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names
      several workers.
    - ``"one_device"``: the first GPU, or the CPU.
    - ``"mirrored"``: ``MirroredStrategy`` over ``devices`` (default: all GPUs, else the CPU).
    - ``"multi_worker_mirrored"``: ``MultiWorkerMirroredStrategy`` configured from ``TF_CONFIG``.

    Args:
        name: One of ``"auto"``, ``"one_device"``, ``"mirrored"``, ``"multi_worker_mirrored"``.
        devices: Optional device list for ``"mirrored"`` (e.g. two logical CPUs in tests).

    Example:
        >>> get_distribution_strategy("one_device").num_replicas_in_sync
        1
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; valid strategies are {', '.join(STRATEGIES)}.")
    tf_config = os.environ.get("TF_CONFIG")
    if name == "multi_worker_mirrored" or (name == "auto" and _several_workers(tf_config)):
        if not tf_config:
            raise ValueError(
                "strategy='multi_worker_mirrored' needs the TF_CONFIG environment variable, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}} '
                "(see docs/training.md)."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices or [d.name for d in gpus] or None)
    if name == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _several_workers(tf_config: str | None) -> bool:
    if not tf_config:
        return False
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); received {tf_config!r}.") from None
    return sum(len(v) for k, v in cluster.items() if k in ("chief", "worker")) > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory (always true outside multi-worker).

    Example:
        >>> is_chief(tf.distribute.get_strategy())
        True
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
