"""The examples/ scripts: each answers --help, and each runs end to end at tiny size.

Every script runs in a fresh interpreter, as a user would start it. The trainings are shared
through module-scoped fixtures: the U-Net and DeepLabV3 runs are also the two runs that
``compare_study.py`` scores, and one tiny random model serves the prediction examples.
"""

import base64
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import REPO_ROOT

EXAMPLES_DIR = os.path.join(REPO_ROOT, "examples")
CONFIGS_DIR = os.path.join(EXAMPLES_DIR, "configs")
EXAMPLES = ("train_unet", "train_deeplabv3", "compare_study", "train_on_folders", "train_distributed", "sky_view_factor",
            "replace_sky", "predict_folder", "serve_client")
TINY_STUDY = ("--data", "synthetic", "--num-examples", "10", "--image-size", "64", "--epochs", "1",
              "--encoder-weights", "none", "--batch-size", "4")
"""The study scripts at smoke-test size: 6 / 2 / 2 synthetic scenes, one epoch, 64x64."""


def run_example(name, *args, cwd, timeout=900):
    """Runs ``examples/<name>.py ARGS`` in a fresh interpreter; returns the completed process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, os.path.join(EXAMPLES_DIR, f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=str(cwd), timeout=timeout)


def succeeded(done):
    """The assertion message for a failed run: the end of its output."""
    return done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES_DIR, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# ----------------------------------------------------------------------------- fast checks


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_answers_help(name, tmp_path):
    done = run_example(name, "--help", cwd=tmp_path, timeout=120)
    assert succeeded(done)[0], succeeded(done)[1]
    assert done.stdout.startswith("usage:") and f"{name}.py" in done.stdout.splitlines()[0]


@pytest.mark.parametrize("name", ["train_unet", "train_deeplabv3", "compare_study", "train_distributed",
                                  "train_on_folders"])
def test_help_does_not_load_tensorflow(name):
    # --help must answer at once: TensorFlow is imported only after the arguments are parsed.
    code = (f"import runpy, sys; sys.argv = ['{name}.py', '--help']; sys.path.insert(0, {EXAMPLES_DIR!r})\n"
            f"try:\n    runpy.run_path({os.path.join(EXAMPLES_DIR, name + '.py')!r}, run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('TF LOADED' if 'tensorflow' in sys.modules else 'NO TF')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().endswith("NO TF"), done.stdout[-500:] + done.stderr[-1000:]


def test_study_configs_describe_the_study():
    import skyseg_tf
    from skyseg_tf.training import TrainConfig

    unet = TrainConfig.from_file(os.path.join(CONFIGS_DIR, "unet_resnet50_ade20k.yaml"))
    deeplab = TrainConfig.from_file(os.path.join(CONFIGS_DIR, "deeplabv3_resnet50_ade20k.yaml"))
    for config, model in ((unet, "unet_resnet50"), (deeplab, "deeplabv3_resnet50")):
        assert config.model == model and config.encoder_weights == "imagenet"
        assert config.data == "ade20k_outdoors_sky/kaggle"
        assert (config.epochs, config.loss, config.optimizer, config.learning_rate) == (20, "dice", "adam", 1e-4)
        assert config.image_size == (512, 512) and 8 <= config.global_batch_size <= 16
        assert config.strategy == "auto" and config.mixed_precision is True
        assert config.run_dir == f"runs/{model}"
    assert unet.model_kwargs == {}
    assert deeplab.model_kwargs == {"classes": 2, "activation": "softmax", "output_stride": 8,
                                    "atrous_rates": [12, 24, 36]}
    model = skyseg_tf.build_model(deeplab.model, encoder_weights=None, input_shape=(64, 64, 3), **deeplab.model_kwargs)
    assert model.output_shape == (None, 64, 64, 2)


def test_comparison_table_puts_the_study_beneath_our_rows():
    compare_study = load_example("compare_study")
    table = compare_study.comparison_table([
        {"name": "unet_resnet50", "model": "unet_resnet50", "metrics": {"iou": 0.9, "auc": 0.99, "dice": 0.95}},
        {"name": "mine", "model": None, "metrics": {"iou": 0.5, "auc": 0.6, "dice": 0.7}},
    ]).splitlines()
    assert table[2] == "| unet_resnet50 (ours) | 90.00% | 99.00% | 95.00% | -4.89 |"
    assert table[3] == "| mine (ours) | 50.00% | 60.00% | 70.00% | - |"
    assert "94.89%" in table[4] and "80.16%" in table[4] and "93.92%" in table[5] and "80.02%" in table[5]
    assert compare_study.parse_image_size("64") == (64, 64)
    assert compare_study.parse_image_size("128x96") == (128, 96)


def test_train_distributed_prints_the_tf_config_of_each_host(tmp_path):
    done = run_example("train_distributed", "--cluster", "host1:12345", "host2:23456", "--print-tf-config",
                       cwd=tmp_path, timeout=60)
    assert succeeded(done)[0], succeeded(done)[1]
    configs = [json.loads(line.split("'")[1]) for line in done.stdout.splitlines() if line.startswith("TF_CONFIG=")]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert all(c["cluster"] == {"worker": ["host1:12345", "host2:23456"]} for c in configs)


def test_flags_override_the_config_file(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES_DIR)  # train_unet imports its sibling compare_study
    train_unet = load_example("train_unet")
    parser = train_unet.build_parser(train_unet.DEFAULT_CONFIG, "test")
    config = train_unet.config_from_args(parser.parse_args(
        ["--data-dir", "/data/tfds", "--image-size", "256x320", "--batch-size", "16", "--encoder-weights", "none"]))
    assert (config.model, config.data, config.data_kwargs) == ("unet_resnet50", "ade20k_outdoors_sky/kaggle",
                                                               {"data_dir": "/data/tfds"})
    assert (config.image_size, config.global_batch_size, config.encoder_weights) == ((256, 320), 16, None)
    assert config.epochs == 20 and config.learning_rate == 1e-4  # from the file
    config = train_unet.config_from_args(parser.parse_args(["--data", "synthetic", "--num-examples", "12"]))
    assert config.data_kwargs == {"num_examples": 12}  # the file's data_kwargs belong to its own source
    for flags, message in ((["--data", "folder"], "train_on_folders.py"),
                           (["--num-examples", "12"], "--num-examples is for --data synthetic"),
                           (["--data", "synthetic", "--data-dir", "x"], "--data-dir is for TFDS"),
                           (["--epochs", "0"], "epochs=0")):
        with pytest.raises(ValueError, match=message):
            train_unet.config_from_args(parser.parse_args(flags))


def test_study_scripts_report_bad_values_in_one_line(tmp_path):
    done = run_example("train_unet", *TINY_STUDY, "--strategy", "tpu", cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "strategy='tpu'" in done.stderr and "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- the study's two runs


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("unet")
    done = run_example("train_unet", *TINY_STUDY, "--run-dir", root / "run", cwd=root)
    yield done, root / "run"
    shutil.rmtree(root, ignore_errors=True)  # about 0.8 GB: best.keras and weights with Adam's state


@pytest.fixture(scope="module")
def deeplab_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("deeplab")
    # The shipped config with smaller ASPP rates: rates 12/24/36 on the 8x8 feature map of a 64 px
    # input make TensorFlow's CPU dilated convolutions about ten times slower (44 s a step here).
    # The two-class softmax head and output stride 8 stay as the study has them.
    with open(os.path.join(CONFIGS_DIR, "deeplabv3_resnet50_ade20k.yaml"), encoding="utf-8") as handle:
        values = yaml.safe_load(handle)
    values["model_kwargs"]["atrous_rates"] = [1, 2, 3]
    config = root / "deeplab_tiny.yaml"
    config.write_text(yaml.safe_dump(values))
    done = run_example("train_deeplabv3", "--config", config, *TINY_STUDY, "--run-dir", root / "run", cwd=root)
    yield done, root / "run"
    shutil.rmtree(root, ignore_errors=True)


def check_study_run(done, run_dir, model):
    assert succeeded(done)[0], succeeded(done)[1]
    config = read_json(run_dir / "config.json")
    # The config file's values, with the flags applied; mixed precision turned off on the CPU.
    assert config["model"] == model and config["loss"] == "dice" and config["learning_rate"] == 1e-4
    assert config["data"] == "synthetic" and config["data_kwargs"] == {"num_examples": 10}
    assert (config["image_size"], config["epochs"], config["global_batch_size"]) == ([64, 64], 1, 4)
    assert config["encoder_weights"] is None and config["mixed_precision"] is False
    assert (run_dir / "best.keras").is_file() and (run_dir / "training_curves.png").is_file()
    report = read_json(run_dir / "test_evaluation" / "metrics.json")
    assert report["settings"]["split"] == "test" and report["models"][0]["num_images"] == 2  # 20 % of 10
    iou = report["models"][0]["metrics"]["iou"]
    assert 0.0 <= iou <= 1.0
    # The table beside the study's numbers.
    assert f"| {model} (ours) | {100 * iou:.2f}% |" in done.stdout
    assert "| U-Net, ResNet50 (Sky Segmentation (2023)) | 94.89% | 80.16% |" in done.stdout
    assert "| DeepLabV3, ResNet50, OS 8 (Sky Segmentation (2023)) | 93.92% | 80.02% |" in done.stdout
    return config


@pytest.mark.slow
def test_train_unet_trains_and_scores_the_test_split(unet_run):
    done, run_dir = unet_run
    check_study_run(done, run_dir, "unet_resnet50")
    assert "No GPU found: training in float32" in done.stdout


@pytest.mark.slow
def test_train_deeplabv3_trains_the_two_class_softmax_head(deeplab_run):
    done, run_dir = deeplab_run
    config = check_study_run(done, run_dir, "deeplabv3_resnet50")
    assert config["model_kwargs"] == {"classes": 2, "activation": "softmax", "output_stride": 8,
                                      "atrous_rates": [1, 2, 3]}
    history = read_json(run_dir / "history.json")
    assert np.isfinite(history["loss"]).all() and 0.0 <= history["val_iou"][0] <= 1.0


@pytest.mark.slow
def test_compare_study_scores_both_runs_side_by_side(unet_run, deeplab_run, tmp_path):
    (unet_done, unet_dir), (deeplab_done, deeplab_dir) = unet_run, deeplab_run
    assert unet_done.returncode == 0 and deeplab_done.returncode == 0
    # A run directory and a .keras file: the data and size come from the runs' config.json.
    done = run_example("compare_study", unet_dir, deeplab_dir / "best.keras", "--out", tmp_path / "cmp", "--quiet",
                       cwd=tmp_path)
    assert succeeded(done)[0], succeeded(done)[1]
    report = read_json(tmp_path / "cmp" / "metrics.json")
    assert [m["name"] for m in report["models"]] == ["unet_resnet50", "deeplabv3_resnet50"]
    assert report["settings"]["image_size"] == [64, 64] and report["settings"]["split"] == "test"
    # The same models on the same test split score as they did right after training.
    for model, run_dir in zip(report["models"], (unet_dir, deeplab_dir)):
        own = read_json(run_dir / "test_evaluation" / "metrics.json")["models"][0]
        assert model["num_images"] == own["num_images"] == 2
        np.testing.assert_allclose(model["metrics"]["iou"], own["metrics"]["iou"], atol=1e-6)
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| unet_resnet50 (ours)", "| deeplabv3_resnet50 (ours)",
        "| U-Net, ResNet50 (Sky Segmentation (2023))", "| DeepLabV3, ResNet50, OS 8 (Sky Segmentation (2023))"]
    assert table.split("\n\n", 2)[2].strip() in done.stdout
    missing = run_example("compare_study", tmp_path / "nothing_here", cwd=tmp_path, timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


# ----------------------------------------------------------------------------- own folders, several devices


@pytest.mark.slow
def test_train_on_folders_with_label_map_masks(tmp_path):
    from skyseg_tf.data.synthetic import write_synthetic_folder
    from tfds_ade20k_outdoors import split_for_file_name

    root = write_synthetic_folder(tmp_path / "data", num_examples=10, image_size=(48, 80))
    for mask_path in (root / "masks").iterdir():  # 0/255 masks -> label maps: sky 3, other 7
        mask = np.asarray(Image.open(mask_path))
        Image.fromarray(np.where(mask == 255, 3, 7).astype(np.uint8)).save(mask_path)
    run_dir = tmp_path / "run"
    done = run_example("train_on_folders", "--images", root / "images", "--masks", root / "masks",
                       "--sky-value", "3", "--model", "unet_mobilenet_v3_large", "--encoder-weights", "none",
                       "--image-size", "64", "--epochs", "1", "--batch-size", "4", "--run-dir", run_dir,
                       cwd=tmp_path)
    assert succeeded(done)[0], succeeded(done)[1]
    names = sorted(p.name for p in (root / "images").iterdir())
    test_names = [name for name in names if split_for_file_name(name) == "test"]
    train_names = [name for name in names if split_for_file_name(name) == "train"]
    assert f"Training unet_mobilenet_v3_large on {len(train_names)} of 10 pairs" in done.stdout
    assert read_json(run_dir / "config.json")["data_kwargs"]["sky_value"] == [3]
    report = read_json(run_dir / "test_evaluation" / "metrics.json")
    assert [e["file_name"] for e in report["models"][0]["per_image"]] == test_names
    # Masks for the held-out photos, at their own 48x80 resolution.
    for name in test_names:
        mask = np.asarray(Image.open(run_dir / "predictions" / name.replace(".png", "_mask.png")))
        assert mask.shape == (48, 80) and set(np.unique(mask)) <= {0, 255}
    too_few = run_example("train_on_folders", "--images", root / "images", "--masks", root / "masks",
                          "--batch-size", "16", "--run-dir", tmp_path / "other", cwd=tmp_path, timeout=120)
    assert too_few.returncode == 2 and "training needs at least one batch (16)" in too_few.stderr
    shutil.rmtree(run_dir)


@pytest.mark.slow
def test_train_distributed_scales_the_global_batch(tmp_path):
    run_dir = tmp_path / "run"
    done = run_example("train_distributed", "--strategy", "one_device", "--model", "unet_mobilenet_v3_large",
                       "--data", "synthetic", "--num-examples", "10", "--image-size", "64", "--epochs", "1",
                       "--encoder-weights", "none", "--per-replica-batch-size", "4", "--lr-scaling", "linear",
                       "--run-dir", run_dir, cwd=tmp_path)
    assert succeeded(done)[0], succeeded(done)[1]
    assert "OneDeviceStrategy: 1 replica(s) on 1 host(s); global batch 4 = 4 per replica" in done.stdout
    config = read_json(run_dir / "config.json")
    # The config file's global batch of 8 at 1e-4 becomes 4 at 5e-5 under the linear rule.
    assert (config["strategy"], config["global_batch_size"]) == ("one_device", 4)
    np.testing.assert_allclose(config["learning_rate"], 5e-5)
    assert (run_dir / "best.keras").is_file()
    shutil.rmtree(run_dir)


# ----------------------------------------------------------------------------- prediction examples


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small random model saved as .keras, and the model itself."""
    import skyseg_tf

    model = skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None, decoder_filters=(8, 8, 8, 8, 8))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return model, path


def write_scene(path, height, width, seed):
    from skyseg_tf.data.synthetic import render_scene

    Image.fromarray(render_scene(np.random.default_rng(seed), height, width)[0]).save(path)


@pytest.mark.slow
def test_predict_folder_example(tiny_model, tmp_path):
    _, model_path = tiny_model
    (tmp_path / "photos").mkdir()
    write_scene(tmp_path / "photos" / "a.png", 40, 70, 0)
    write_scene(tmp_path / "photos" / "b.jpg", 64, 64, 1)
    done = run_example("predict_folder", model_path, tmp_path / "photos", tmp_path / "out", "--quiet", cwd=tmp_path)
    assert succeeded(done)[0], succeeded(done)[1]
    assert "2 image(s) predicted, 0 failed" in done.stdout
    (tmp_path / "photos" / "broken.png").write_bytes(b"broken")
    again = run_example("predict_folder", model_path, tmp_path / "photos" / "broken.png", tmp_path / "out2", "--quiet",
                        cwd=tmp_path)
    assert again.returncode == 1 and "broken.png" in again.stdout + again.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "a_mask.png")).shape == (40, 70)
    assert Image.open(tmp_path / "out" / "b_overlay.jpg").size == (64, 64)
    assert (tmp_path / "out" / "b_probability.png").is_file()


@pytest.mark.slow
def test_replace_sky_example(tiny_model, tmp_path):
    _, model_path = tiny_model
    write_scene(tmp_path / "photo.png", 48, 64, 2)
    Image.new("RGB", (90, 30), (250, 120, 40)).save(tmp_path / "sunset.png")
    done = run_example("replace_sky", tmp_path / "photo.png", tmp_path / "sunset.png", "--model", model_path,
                       "--out", tmp_path / "out.png", cwd=tmp_path)
    assert succeeded(done)[0], succeeded(done)[1]
    assert done.stdout.startswith(f"wrote {tmp_path / 'out.png'} (sky ")
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (48, 64, 3)


def test_replace_sky_composites_the_new_sky_by_the_matte():
    """alpha 1 takes the new sky (resized to the photo), alpha 0 keeps the photo."""
    example = load_example("replace_sky")
    photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    alpha = np.zeros((64, 64), np.float32)
    alpha[:20] = 1.0
    out = example.replace_sky(photo, np.full((10, 30, 3), 7, np.uint8), alpha)
    assert (out[:20] == 7).all() and (out[20:] == photo[20:]).all()


def test_replace_sky_reports_a_missing_photo_in_one_line(tiny_model, tmp_path):
    _, model_path = tiny_model
    Image.new("RGB", (90, 30), (250, 120, 40)).save(tmp_path / "sunset.png")
    done = run_example("replace_sky", tmp_path / "missing.png", tmp_path / "sunset.png", "--model", model_path,
                       cwd=tmp_path)
    assert done.returncode == 2 and "missing.png" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_replace_sky_example_on_a_video(tiny_model, tmp_path):
    from skyseg_tf.video import iter_video_frames, read_video_info, synthetic_clip, write_video

    _, model_path = tiny_model
    write_video(tmp_path / "clip.mp4", (frame.image for frame in synthetic_clip(6, (48, 64), seed=2)), fps=15)
    Image.new("RGB", (90, 30), (250, 120, 40)).save(tmp_path / "sunset.png")
    done = run_example("replace_sky", tmp_path / "clip.mp4", tmp_path / "sunset.png", "--model", model_path,
                       "--smoothing", "0.5", cwd=tmp_path)
    assert succeeded(done)[0], succeeded(done)[1]
    assert done.stdout.startswith("wrote replaced.mp4 (6 frames)")  # the default output name for a video
    info = read_video_info(tmp_path / "replaced.mp4")
    assert (info.fps, info.size) == (15.0, (48, 64))
    assert len(list(iter_video_frames(tmp_path / "replaced.mp4"))) == 6
    bad = run_example("replace_sky", tmp_path / "clip.mp4", tmp_path / "sunset.png", "--model", model_path,
                      "--smoothing", "1.5", "--out", tmp_path / "bad.mp4", cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "smoothing: received 1.5" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.mp4").exists()


class StubServing(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST predict API in front of an exported SavedModel's signatures."""

    signatures = None
    requests = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        import tensorflow as tf

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body["signature_name"]))
        data = [base64.b64decode(instance["image_bytes"]["b64"]) for instance in body["instances"]]
        outputs = self.signatures[body["signature_name"]](image_bytes=tf.constant(data))
        predictions = [{key: value.numpy()[k].tolist() for key, value in outputs.items()} for k in range(len(data))]
        answer = json.dumps({"predictions": predictions}).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.mark.slow
def test_serve_client_example_against_a_stub_server(tiny_model, tmp_path):
    import tensorflow as tf

    from skyseg_tf.export import export_saved_model

    model, _ = tiny_model
    version_dir = export_saved_model(model, tmp_path / "export", image_size=64)
    StubServing.signatures = tf.saved_model.load(str(version_dir)).signatures
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubServing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        write_scene(tmp_path / "a.png", 40, 60, 3)
        write_scene(tmp_path / "b.jpg", 64, 96, 4)
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/models/skyseg:predict"
        done = run_example("serve_client", tmp_path / "a.png", tmp_path / "b.jpg", "--send", "--url", url,
                           "--out-dir", tmp_path / "masks", "--body-out", tmp_path / "body.json", cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert succeeded(done)[0], succeeded(done)[1]
    assert StubServing.requests == [("/v1/models/skyseg:predict", "serving_bytes")]
    assert json.loads((tmp_path / "body.json").read_text())["signature_name"] == "serving_bytes"
    assert np.asarray(Image.open(tmp_path / "masks" / "a_mask.png")).shape == (40, 60)
    assert np.asarray(Image.open(tmp_path / "masks" / "b_mask.png")).shape == (64, 96)
