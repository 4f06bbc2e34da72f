"""Training: config, strategy selection, ``train(config)`` and its callbacks."""

from skyseg_tf.training.config import ConfigError, TrainConfig
from skyseg_tf.training.strategy import get_distribution_strategy, is_chief
from skyseg_tf.training.train import TrainingError, TrainResult, finalize_best_model, read_history, train

__all__ = [
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "finalize_best_model",
    "get_distribution_strategy",
    "is_chief",
    "read_history",
    "train",
]
