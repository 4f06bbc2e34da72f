"""Training: one device, MirroredStrategy, MultiWorkerMirroredStrategy, resume after SIGKILL, errors."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO_ROOT, run_python
from skyseg_tf.inference import load_model
from skyseg_tf.training import ConfigError, TrainConfig, TrainingError, train
from skyseg_tf.training.train import BEST_MODEL, read_history

TINY = {
    "model": "unet_mobilenet_v3_large",
    "encoder_weights": None,
    "data": "synthetic",
    "data_kwargs": {"num_examples": 20, "render_size": [64, 64]},
    "image_size": [64, 64],
    "global_batch_size": 4,
    "epochs": 1,
    "tensorboard": False,
    "verbose": 2,
}


def _assert_finite_history(history, epochs):
    assert history["epoch"] == list(range(epochs))
    for key in ("loss", "iou", "dice", "auc", "val_loss", "val_iou", "val_boundary_f"):
        assert np.all(np.isfinite(history[key])), (key, history[key])
        if key != "loss" and key != "val_loss":
            assert all(0.0 <= v <= 1.0 for v in history[key]), (key, history[key])


def test_one_epoch_on_one_device_writes_the_run_directory(tmp_path):
    result = train({**TINY, "run_dir": str(tmp_path / "run"), "strategy": "one_device", "tensorboard": True})
    _assert_finite_history(result.history, 1)
    for name in ("config.json", "history.csv", "history.json", BEST_MODEL, "training_curves.png", "tensorboard"):
        assert os.path.exists(os.path.join(result.run_dir, name)), name
    assert not os.path.exists(os.path.join(result.run_dir, "backup"))  # removed once the run finished
    with open(os.path.join(result.run_dir, "config.json")) as handle:
        assert json.load(handle)["model"] == "unet_mobilenet_v3_large"
    assert result.epochs_completed == 1
    # fast_training (the default) trained fused BatchNorms, but best.keras is the model as built,
    # layer by layer, and records the scale it was trained at.
    from skyseg_tf import preprocessing
    from skyseg_tf.models import build_model

    best = load_model(result.best_model_path)
    layers = _all_layer_types(best)
    assert "FusedBatchNormalization" not in layers and "BatchNormalization" in layers
    built = build_model("unet_mobilenet_v3_large", encoder_weights=None)
    assert [layer.name for layer in best.layers] == [layer.name for layer in built.layers]
    assert [type(layer) for layer in best.layers] == [type(layer) for layer in built.layers]
    assert preprocessing.get(best) == preprocessing.Preprocessing("resize", (64, 64))


def _all_layer_types(model):
    import keras

    types = set()
    for layer in model.layers:
        types.add(type(layer).__name__)
        if isinstance(layer, keras.Model):
            types |= _all_layer_types(layer)
    return types


def test_fast_training_splits_upsampling_convs_from_a_batch_of_8_and_can_be_turned_off(tmp_path):
    eight = {**TINY, "data_kwargs": {"num_examples": 30, "render_size": [64, 64]}, "global_batch_size": 8,
             "steps_per_epoch": 2, "validation_steps": 1}
    fast = train({**eight, "run_dir": str(tmp_path / "fast")})
    with open(os.path.join(fast.run_dir, "model_rewrites.json")) as handle:
        assert json.load(handle) == {"fused_batch_norms": True, "split_upsampling": True}
    # Saved as built: the split convs are joined again.
    layers = _all_layer_types(load_model(fast.best_model_path))
    assert "NearestUpsampleConv2D" not in layers and "FusedBatchNormalization" not in layers
    plain = train({**eight, "fast_training": False, "run_dir": str(tmp_path / "plain")})
    with open(os.path.join(plain.run_dir, "model_rewrites.json")) as handle:
        assert json.load(handle) == {"fused_batch_norms": False, "split_upsampling": False}


def test_freezing_the_encoder_trains_the_decoder_only_first(tmp_path):
    result = train({**TINY, "epochs": 2, "freeze_encoder_epochs": 1, "run_dir": str(tmp_path / "run")})
    _assert_finite_history(result.history, 2)
    assert os.path.exists(os.path.join(result.run_dir, ".frozen_encoder.done"))
    # The phase's weights are kept only while the next phase could still need them.
    assert not os.path.exists(os.path.join(result.run_dir, "frozen_encoder.weights.h5"))


MIRRORED = textwrap.dedent("""
    import json, sys, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from skyseg_tf.training import get_distribution_strategy, train
    strategy = get_distribution_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
    result = train(CONFIG, strategy=strategy)
    print("HISTORY", json.dumps(result.history))
""")


@pytest.mark.slow
def test_one_epoch_under_mirrored_strategy_with_two_logical_cpus(tmp_path):
    config = {**TINY, "run_dir": str(tmp_path / "run")}
    done = run_python(MIRRORED.replace("CONFIG", repr(config)))
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads(done.stdout.split("HISTORY", 1)[1])
    _assert_finite_history(history, 1)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_all(processes, timeout):
    """Waits for every process; if one fails, the others (stuck in collectives) are stopped."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline and any(p.poll() is None for p in processes):
        if any(p.poll() not in (None, 0) for p in processes):
            break
        time.sleep(1)
    for process in processes:
        if process.poll() is None:
            process.kill()
    return [p.communicate() for p in processes]


@pytest.mark.slow
def test_two_workers_train_with_multi_worker_mirrored_strategy(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    config = {**TINY, "run_dir": str(tmp_path / "run"), "strategy": "multi_worker_mirrored"}
    code = f"from skyseg_tf.training import train\nresult = train({config!r})\nprint('BEST', result.best_val_iou)"
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = _wait_all(processes, timeout=600)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        assert "BEST" in out
    chief_history = read_history(str(tmp_path / "run" / "history.csv"))
    _assert_finite_history(chief_history, 1)
    assert os.path.isdir(tmp_path / "run" / "workers" / "worker1")  # the other worker writes aside


KILLED_RUN = textwrap.dedent("""
    import os, signal, keras
    from skyseg_tf.training import train

    class KillMidEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                print("KILLING", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

    train(CONFIG, callbacks=[KillMidEpoch()] if SHOULD_KILL else [])
    print("FINISHED", flush=True)
""")


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_and_finishes_all_epochs(tmp_path):
    config = {**TINY, "epochs": 3, "run_dir": str(tmp_path / "run")}
    killed = run_python(KILLED_RUN.replace("CONFIG", repr(config)).replace("SHOULD_KILL", "True"))
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    assert "KILLING" in killed.stdout and "FINISHED" not in killed.stdout
    assert read_history(str(tmp_path / "run" / "history.csv"))["epoch"] == [0]
    assert os.path.exists(tmp_path / "run" / "backup" / "latest.weights.h5")

    resumed = run_python(KILLED_RUN.replace("CONFIG", repr(config)).replace("SHOULD_KILL", "False"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "FINISHED" in resumed.stdout
    assert "Epoch 1/3" not in resumed.stdout and "Epoch 2/3" in resumed.stdout  # started where it stopped
    history = read_history(str(tmp_path / "run" / "history.csv"))
    _assert_finite_history(history, 3)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_backup(tmp_path):
    import keras

    class PoisonWeights(keras.callbacks.Callback):
        """Turns a decoder kernel into NaN during the second epoch."""

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                layer = self.model.get_layer("head_conv")
                layer.kernel.assign(np.full(layer.kernel.shape, np.nan, "float32"))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    run_dir = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"NaN or infinite at epoch 2.*last good state is kept in"):
        train({**TINY, "epochs": 3, "run_dir": str(run_dir)}, callbacks=[PoisonWeights()])
    backup = run_dir / "backup"
    with open(backup / "training_metadata.json") as handle:
        assert json.load(handle)["epoch"] == 1  # the backup after epoch 1, not the diverged state
    restored = keras.saving.load_model(str(run_dir / BEST_MODEL))
    assert np.all(np.isfinite(np.asarray(restored.get_layer("head_conv").kernel)))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, r"epochs=0: must be a positive int"),
        ({"model": "unet_vgg"}, r"model='unet_vgg': valid models are .*unet_resnet50"),
        ({"strategy": "tpu"}, r"strategy='tpu': valid values are auto, one_device, mirrored, multi_worker_mirrored"),
        ({"image_size": [64]}, r"image_size=\[64\]: must be two positive ints"),
        ({"learning_rate": -1.0}, r"learning_rate=-1.0: must be a positive number"),
        ({"data": "folder"}, r"data='folder' needs data_kwargs with 'images' and 'masks'"),
        ({"freeze_encoder_epochs": 1}, r"freeze_encoder_epochs=1: must be smaller than epochs \(1\)"),
        ({"epoch": 3}, r"Unknown config key\(s\) epoch; valid keys are model, "),
        ({"fast_training": "yes"}, r"fast_training='yes': must be true or false"),
    ],
)
def test_invalid_config_fails_before_any_work(tmp_path, changes, message):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        train({**TINY, "run_dir": str(run_dir), **changes})
    assert not run_dir.exists()


def test_yaml_style_exponent_strings_are_numbers():
    assert TrainConfig.from_dict({**TINY, "learning_rate": "1e-4"}).learning_rate == 1e-4
    with pytest.raises(ConfigError, match=r"learning_rate='fast': must be a number"):
        TrainConfig.from_dict({**TINY, "learning_rate": "fast"})


def test_config_files_round_trip(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**TINY, "epochs": 7}))
    assert TrainConfig.from_file(str(path)).epochs == 7
    yaml_path = tmp_path / "config.yaml"
    yaml_path.write_text("model: deeplabv3_resnet50\nepochs: 20\nloss: dice\n")
    config = TrainConfig.from_file(str(yaml_path))
    assert (config.model, config.epochs, config.loss) == ("deeplabv3_resnet50", 20, "dice")
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_file(str(tmp_path / "missing.json"))


class _CrashAtEpoch(__import__("keras").callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_a_resumed_run_keeps_the_model_rewrites_its_backup_was_written_with(tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train({**TINY, "epochs": 2, "fast_training": False, "run_dir": run_dir}, callbacks=[_CrashAtEpoch(1)])
    assert os.path.isdir(os.path.join(run_dir, "backup"))
    with open(os.path.join(run_dir, "model_rewrites.json")) as handle:
        assert json.load(handle) == {"fused_batch_norms": False, "split_upsampling": False}
    # Resumed with fast_training on (the default): the backup's model has plain BatchNorms, so
    # the run keeps them, loads the backup and finishes.
    result = train({**TINY, "epochs": 2, "run_dir": run_dir})
    assert result.history["epoch"] == [0, 1]
    with open(os.path.join(run_dir, "model_rewrites.json")) as handle:
        assert json.load(handle) == {"fused_batch_norms": False, "split_upsampling": False}
    assert "FusedBatchNormalization" not in _all_layer_types(load_model(result.best_model_path))


def test_restore_canonical_gives_the_trained_outputs_in_the_built_architecture():
    from skyseg_tf.models import build_model
    from skyseg_tf.models.optimize import optimize_for_training, restore_canonical

    def build():
        return build_model("unet_mobilenet_v3_large", encoder_weights=None, decoder_filters=(32, 16, 16, 8, 8))

    trained = optimize_for_training(build())
    rng = np.random.default_rng(0)
    for variable in trained.weights:  # weights unlike any fresh model's
        variable.assign(rng.normal(0.0, 0.05, variable.shape).astype("float32")
                        + (1.0 if "variance" in variable.path else 0.0))
    restored = restore_canonical(trained, build())
    images = rng.uniform(0, 255, (2, 64, 96, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(restored(images)), np.asarray(trained(images)), atol=1e-5)
    with pytest.raises(ValueError, match="counterpart|differ|shape"):
        restore_canonical(trained, build_model("unet_mobilenet_v3_large", encoder_weights=None))


def test_real_photo_options_mix_val_folder_and_errors_before_anything_is_written(tmp_path):
    from test_real_data import SKY, _colour_folder

    images, labels, _ = _colour_folder(tmp_path / "train", count=6, size=(64, 96))
    val_images, val_masks, _ = _colour_folder(tmp_path / "val", count=3, size=(64, 96))
    config = {**TINY, "data": "mix", "image_size": [64, 64], "resize_mode": "short_side", "scale_range": [1.0, 1.3],
              "augment_strength": "photo", "steps_per_epoch": 2, "val_images": str(val_images),
              "val_masks": str(val_masks), "data_kwargs": {"sources": [
                  {"type": "folder", "images": str(images), "masks": str(labels), "sky_color": list(SKY),
                   "split": None, "weight": 0.7},
                  {"type": "synthetic", "num_examples": 10, "image_size": [64, 96], "weight": 0.3}]}}
    result = train({**config, "run_dir": str(tmp_path / "run")})
    _assert_finite_history(result.history, 1)
    from skyseg_tf import preprocessing

    assert preprocessing.get(load_model(result.best_model_path)) == preprocessing.Preprocessing("short_side", (64, 64))
    # A wrong colour: one error naming the colours found; nothing written.
    bad = {**config, "data_kwargs": {"sources": [{**config["data_kwargs"]["sources"][0], "sky_color": [1, 2, 3]}]}}
    with pytest.raises(ValueError, match=r"\(0, 128, 128\)"):
        train({**bad, "run_dir": str(tmp_path / "bad")})
    assert not (tmp_path / "bad").exists()
    # A validation folder with an unmatched file.
    (val_images / "extra.jpg").write_bytes((val_images / "p0.jpg").read_bytes())
    with pytest.raises(ValueError, match="extra.jpg"):
        train({**config, "run_dir": str(tmp_path / "bad2")})
    assert not (tmp_path / "bad2").exists()
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        TrainConfig.from_dict({**config, "steps_per_epoch": None})
    with pytest.raises(ConfigError, match="val_masks"):
        TrainConfig.from_dict({**config, "val_masks": None})


def test_initial_weights_start_from_a_trained_model(tmp_path):
    from skyseg_tf.models import build_model
    from skyseg_tf.training.train import load_initial_weights

    first = train({**TINY, "run_dir": str(tmp_path / "first")})
    trained = load_model(first.best_model_path)
    fresh = load_initial_weights(build_model("unet_mobilenet_v3_large", encoder_weights=None), first.best_model_path)
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(fresh(images)), np.asarray(trained(images)), atol=1e-6)
    second = train({**TINY, "initial_weights": first.best_model_path, "run_dir": str(tmp_path / "second")})
    assert second.epochs_completed == 1
    with pytest.raises(ValueError, match="same architecture|shape"):
        load_initial_weights(build_model("unet_mobilenet_v3_large", encoder_weights=None,
                                         decoder_filters=(8, 8, 8, 8, 8)), first.best_model_path)
    with pytest.raises(ConfigError, match="initial_weights"):
        TrainConfig.from_dict({**TINY, "initial_weights": str(tmp_path / "missing.keras")})
