"""The skyseg command line: commands run, and user mistakes are one clear line, not a traceback."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import skyseg_tf
from skyseg_tf.cli import main


def test_models_lists_the_registry_then_the_presets():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    registry, presets = result.output.split("\n\n", 1)
    assert registry.split() == skyseg_tf.list_models()
    assert all(f"  {name}" in presets for name in skyseg_tf.list_presets())


def test_evaluate_scores_the_split_it_is_given(tiny_model_path, tmp_path):
    """--split train evaluates the train split (it used to evaluate test); the default is test."""
    import json

    counts = {}
    for split in ("train", None):
        out = tmp_path / str(split)
        args = ["evaluate", str(tiny_model_path), "synthetic", "--num-examples", "10", "--render-size", "64x64",
                "--image-size", "64x64", "--num-figures", "0", "--out", str(out)]
        result = CliRunner().invoke(main, args + (["--split", split] if split else []))
        assert result.exit_code == 0, result.output
        settings = json.loads((out / "metrics.json").read_text())["settings"]
        counts[split] = (settings["split"], settings["num_images"])
    assert counts == {"train": ("train", 6), None: ("test", 2)}


def test_data_preview_reads_colour_coded_label_maps(tmp_path):
    from test_real_data import _colour_folder

    images, labels, _ = _colour_folder(tmp_path, count=3, sixteen_bit=True)
    common = ["data", "preview", "folder", "--images", str(images), "--masks", str(labels), "--split", "train",
              "--out", str(tmp_path / "p.png")]
    result = CliRunner().invoke(main, common[:7] + ["--out", str(tmp_path / "p.png"), "--sky-color", "0,128,128"])
    assert result.exit_code == 0, result.output
    wrong = CliRunner().invoke(main, common[:7] + ["--out", str(tmp_path / "q.png"), "--sky-color", "0,0,255"])
    assert wrong.exit_code == 2 and "(0, 128, 128)" in wrong.output and "Traceback" not in wrong.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "0"], "Invalid config value epochs=0: must be a positive int"),
        (["train", "--model", "unet_vgg16"], "Invalid config value model='unet_vgg16'"),
        (["train", "--image-size", "12xab"], "expected HEIGHTxWIDTH"),
        (["train", "--data", "folder"], "data='folder' needs data_kwargs with 'images' and 'masks'"),
        (["data", "preview", "folder"], "The folder source needs --images DIR (and --masks DIR, or none for photos without sky)"),
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


def test_bugs_keep_their_traceback_user_mistakes_do_not(monkeypatch, tmp_path):
    """A KeyError or TypeError that is not this library's message about bad input is a bug: it
    propagates (traceback) instead of becoming a usage error with exit status 2."""
    import skyseg_tf.data.synthetic as synthetic

    def buggy(*args, **kwargs):
        return {}["render_size"]  # a bug, not a raise statement

    monkeypatch.setattr(synthetic, "write_synthetic_folder", buggy)
    result = CliRunner().invoke(main, ["data", "synthetic", "--out", str(tmp_path / "d")])
    assert isinstance(result.exception, KeyError) and result.exit_code != 2
    monkeypatch.undo()
    result = CliRunner().invoke(main, ["data", "synthetic", "--out", str(tmp_path / "d"), "--num-examples", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "num_examples" in result.output
