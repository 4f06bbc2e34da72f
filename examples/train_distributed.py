"""Train on several GPUs (MirroredStrategy) or several hosts (MultiWorkerMirroredStrategy).

``skyseg_tf.training.train(config, strategy=...)`` runs ``model.fit`` under any
``tf.distribute`` strategy; :func:`skyseg_tf.training.get_distribution_strategy` makes one by name:

* ``one_device``: the first GPU, or the CPU.
* ``mirrored``: every local GPU; each holds a copy of the model, takes an equal share of every
  batch, and the gradients are summed over the copies (all-reduce) before each update.
* ``multi_worker_mirrored``: the same across hosts; each host runs this same command with its own
  ``TF_CONFIG`` (the cluster's ``host:port`` list and its own index). Worker 0 is the chief: it
  writes ``RUN_DIR``; the others write their copies under ``RUN_DIR/workers/``.
* ``auto`` (the config's default): ``mirrored`` with several GPUs, ``multi_worker_mirrored`` when
  ``TF_CONFIG`` names several workers, else ``one_device``.

Batch size. ``global_batch_size`` is the batch of one step over *all* replicas; each replica gets
``global / replicas`` images. To keep each GPU as busy as on one GPU, give
``--per-replica-batch-size N`` and the global batch becomes ``N x replicas``. A larger batch
takes fewer steps per epoch, so the learning rate often grows with it: ``--lr-scaling linear``
multiplies the config's rate by ``new global batch / config's global batch`` (the "linear
scaling rule", usual with SGD), ``sqrt`` by its square root (often better with Adam).

Several hosts. Print what to run on each host (no TensorFlow needed)::

    python examples/train_distributed.py --cluster host1:12345 host2:12345 --print-tf-config

which gives, for host1 (host2 the same with ``"index": 1``)::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}' \\
        python examples/train_distributed.py --strategy multi_worker_mirrored

Every host needs the same code, data and command; the ports must be reachable between hosts.

Run:
    python examples/train_distributed.py --strategy mirrored                        # all local GPUs
    python examples/train_distributed.py --strategy mirrored --per-replica-batch-size 8 --lr-scaling sqrt
    python examples/train_distributed.py --config examples/configs/deeplabv3_resnet50_ade20k.yaml
    python examples/train_distributed.py --strategy mirrored --cpu-replicas 2 --data synthetic \\
        --num-examples 20 --image-size 64 --epochs 1 --encoder-weights none   # mirrored on one CPU
    python examples/train_distributed.py --strategy one_device --model unet_mobilenet_v3_large \\
        --data synthetic --num-examples 20 --image-size 64 --epochs 1 --encoder-weights none \\
        --per-replica-batch-size 4 --run-dir /tmp/distributed_smoke                  # CPU smoke run

Example:
    >>> tf_config_for(["host1:12345", "host2:12345"], 1)
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 1}}'
"""

from __future__ import annotations

import json
import math
import os
import sys

from compare_study import CONFIG_DIR
from train_unet import build_parser, config_from_args, is_tfds, prepare_tfds, resolve_mixed_precision

DEFAULT_CONFIG = CONFIG_DIR / "unet_resnet50_ade20k.yaml"
DESCRIPTION = "Train under a tf.distribute strategy: several GPUs, or several hosts with TF_CONFIG."


def tf_config_for(workers: list[str], index: int) -> str:
    """The ``TF_CONFIG`` JSON for worker ``index`` of a cluster of ``host:port`` workers."""
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}})


def print_tf_config(workers: list[str]) -> None:
    """Prints the command to start on each host of a multi-worker cluster."""
    print(f"Start this on each of the {len(workers)} hosts (same code, data and flags everywhere):\n")
    for index, worker in enumerate(workers):
        role = "chief: writes the run directory" if index == 0 else f"writes RUN_DIR/workers/worker{index}"
        print(f"# on {worker.rsplit(':', 1)[0]} ({role})")
        print(f"TF_CONFIG='{tf_config_for(workers, index)}' \\\n"
              "    python examples/train_distributed.py --strategy multi_worker_mirrored\n")
    print("Each worker waits for the others at start-up; training begins when all have joined.")


def parse_args(argv=None):
    parser = build_parser(DEFAULT_CONFIG, DESCRIPTION)
    parser.add_argument("--model", help="registry name (default: the config's)")
    parser.add_argument("--per-replica-batch-size", type=int,
                        help="images per replica per step; the global batch becomes this x replicas")
    parser.add_argument("--lr-scaling", choices=("none", "linear", "sqrt"), default="none",
                        help="scale the config's learning rate with the global batch (default: none)")
    parser.add_argument("--cpu-replicas", type=int,
                        help="split the CPU into N logical devices, to try --strategy mirrored without GPUs")
    parser.add_argument("--cluster", nargs="+", metavar="HOST:PORT", help="the workers, for --print-tf-config")
    parser.add_argument("--print-tf-config", action="store_true",
                        help="print the TF_CONFIG and command for each --cluster host, then exit")
    args = parser.parse_args(argv)
    if args.print_tf_config and not args.cluster:
        parser.error("--print-tf-config needs --cluster HOST:PORT [HOST:PORT ...]")
    if args.batch_size and args.per_replica_batch_size:
        parser.error("give --batch-size (global) or --per-replica-batch-size, not both")
    return args


def scaled_learning_rate(rate: float, new_batch: int, old_batch: int, rule: str) -> float:
    """The learning rate for a new global batch size under a scaling rule.

    Example:
        >>> scaled_learning_rate(1e-4, 32, 8, "linear"), scaled_learning_rate(1e-4, 32, 8, "sqrt")
        (0.0004, 0.0002)
    """
    factor = {"none": 1.0, "linear": new_batch / old_batch, "sqrt": math.sqrt(new_batch / old_batch)}[rule]
    return rate * factor


def main(argv=None) -> int:
    """Parses ``argv``, picks the strategy, trains; returns the exit status."""
    args = parse_args(argv)
    if args.print_tf_config:
        print_tf_config(args.cluster)
        return 0
    import tensorflow as tf

    from skyseg_tf.training import TrainingError, get_distribution_strategy, is_chief, train

    devices = None
    if args.cpu_replicas:
        # Must happen before TensorFlow touches a device; for trying mirrored on a laptop only.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_replicas)
        devices = [f"/cpu:{index}" for index in range(args.cpu_replicas)]
    try:
        config = config_from_args(args)
        if args.model:
            config = config.replace(model=args.model)
        strategy = get_distribution_strategy(config.strategy, devices=devices)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        if "TF_CONFIG" in str(error):
            print("Print the TF_CONFIG of each host with: python examples/train_distributed.py "
                  "--cluster host1:12345 host2:12345 --print-tf-config", file=sys.stderr)
        return 2

    replicas = strategy.num_replicas_in_sync
    if args.per_replica_batch_size:
        global_batch = args.per_replica_batch_size * replicas
        rate = scaled_learning_rate(config.learning_rate, global_batch, config.global_batch_size, args.lr_scaling)
        config = config.replace(global_batch_size=global_batch, learning_rate=rate)
    if config.global_batch_size % replicas:
        print(f"error: global batch size {config.global_batch_size} does not split evenly over {replicas} "
              f"replicas; use a multiple of {replicas} or --per-replica-batch-size.", file=sys.stderr)
        return 2
    try:
        config = resolve_mixed_precision(config, args.mixed_precision)
        if is_tfds(config.data):
            prepare_tfds(config.data, config.data_kwargs.get("data_dir"), args.manual_dir)
    except (ValueError, AssertionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")) or 1
    print(f"{type(strategy).__name__}: {replicas} replica(s) on {workers} host(s); global batch "
          f"{config.global_batch_size} = {config.global_batch_size // replicas} per replica; learning rate "
          f"{config.learning_rate:g}; mixed precision {'on' if config.mixed_precision else 'off'}; "
          f"{'chief' if is_chief(strategy) else 'worker'}, run directory {config.run_dir}")
    try:
        result = train(config, strategy=strategy)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if is_chief(strategy):
        print(f"Best validation IoU {result.best_val_iou:.4f} after {result.epochs_completed} epochs: "
              f"{result.best_model_path}")
        print(f"Score it: python examples/compare_study.py {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
