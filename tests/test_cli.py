"""The skyseg command line: commands run, and user mistakes are one clear line, not a traceback."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import skyseg_tf
from skyseg_tf.cli import main


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(str(path))
    return path


def test_models_lists_the_registry():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    assert result.output.split() == skyseg_tf.list_models()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "Invalid config value epochs=0: must be a positive int"),
        (["train", "--model", "unet_vgg16"], "Invalid config value model='unet_vgg16'"),
        (["train", "--image-size", "12xab"], "expected HEIGHTxWIDTH"),
        (["train", "--data", "folder"], "data='folder' needs data_kwargs with 'images' and 'masks'"),
        (["data", "preview", "folder"], "The folder source needs --images DIR and --masks DIR"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(main, args + (["--run-dir", str(tmp_path / "run")] if args[0] == "train" else []))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_data_preview_and_synthetic_write_files(tmp_path):
    runner = CliRunner()
    preview = tmp_path / "preview.png"
    result = runner.invoke(main, ["data", "preview", "synthetic", "--num-examples", "10", "--render-size", "32x48",
                                  "--num", "4", "--out", str(preview)])
    assert result.exit_code == 0, result.output
    assert Image.open(preview).size[0] > 100
    result = runner.invoke(main, ["data", "synthetic", "--out", str(tmp_path / "data"), "--num-examples", "3",
                                  "--image-size", "32x32"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "data" / "masks").glob("*.png"))) == 3


def test_predict_reports_bad_files_and_exits_1(tiny_model_path, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((40, 56, 3), 120, np.uint8)).save(photos / "good.jpg")
    (photos / "broken.png").write_bytes(b"this is not a png")
    result = CliRunner().invoke(main, ["predict", str(photos), "--model", str(tiny_model_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "broken.png" in result.output and "1 failed" in result.output
    mask = Image.open(tmp_path / "out" / "good_mask.png")
    assert mask.size == (56, 40)
