"""The pretrained model shipped in the package: loading, its masks on real photos, its defaults."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import skyseg_tf
from conftest import run_python
from skyseg_tf import preprocessing
from skyseg_tf.presets import DEFAULT_PRESET, WEIGHTS_FILE, from_preset, list_presets, preset_info, save_preset

skimage_data = pytest.importorskip("skimage.data")

# Regions labelled by hand on scikit-image's photos, as (top, bottom, left, right) in pixels.
ROCKET_SKY = (30, 110, 230, 290)  # between the left tower and the rocket's nose, dusk sky
ROCKET_GROUND = (405, 427, 220, 300)  # the launch platform
CAMERA_SKY = (10, 60, 10, 150)  # overcast sky, top left (a grayscale photo)
CAMERA_GRASS = (400, 500, 350, 500)  # the lawn


def _region(probability, box):
    top, bottom, left, right = box
    return float(probability[top:bottom, left:right].mean())


@pytest.fixture(scope="module")
def model():
    return from_preset(DEFAULT_PRESET)


def test_listed_and_small():
    assert DEFAULT_PRESET in list_presets() and list_presets("nothing*") == []
    info = preset_info(DEFAULT_PRESET)
    assert info["model"] in skyseg_tf.list_models()
    assert "non-commercial" in info["licence"]
    size = os.path.getsize(os.path.join(os.path.dirname(skyseg_tf.presets.__file__), DEFAULT_PRESET, WEIGHTS_FILE))
    assert size <= 12 * 2**20
    with pytest.raises(ValueError, match="sky_unet_mobilenet_v3"):
        from_preset("no_such_preset")


@pytest.mark.parametrize("name", list_presets())
def test_every_shipped_preset_is_small_and_masks_a_real_photo(name):
    size = os.path.getsize(os.path.join(os.path.dirname(skyseg_tf.presets.__file__), name, WEIGHTS_FILE))
    assert size <= 12 * 2**20, name
    assert "non-commercial" in preset_info(name)["licence"]
    if name.endswith("_fisheye"):  # a preset for upward fisheye photos: a held-out procedural one
        from skyseg_tf.data.synthetic_upward import render_upward_scene
        from skyseg_tf.hemisphere import ImageCircle

        photo, mask = render_upward_scene(np.random.default_rng(31337), 480, 640, circle=ImageCircle(320, 240, 225),
                                          kind="street", time_of_day="day")
        sky = skyseg_tf.predict_image(from_preset(name), photo) >= 0.5
        truth = mask[..., 0] == 1
        assert (sky & truth).sum() / (sky | truth).sum() > 0.8, name
        assert not sky[:, :80].any()  # outside the image circle
        return
    rocket = skimage_data.rocket()
    probability = skyseg_tf.predict_image(from_preset(name), rocket)
    assert _region(probability, ROCKET_SKY) > 0.8 and _region(probability, ROCKET_GROUND) < 0.3, name


def test_masks_on_real_photos(model):
    rocket = skimage_data.rocket()
    probability = skyseg_tf.predict_image(model, rocket)
    assert probability.shape == rocket.shape[:2]
    assert _region(probability, ROCKET_SKY) > 0.8
    assert _region(probability, ROCKET_GROUND) < 0.3
    camera = np.repeat(skimage_data.camera()[..., None], 3, axis=-1)
    probability = skyseg_tf.predict_image(model, camera)
    assert _region(probability, CAMERA_SKY) > 0.7
    assert _region(probability, CAMERA_GRASS) < 0.2


@pytest.mark.parametrize("name", ["coffee", "astronaut", "chelsea"])
def test_no_sky_in_photos_without_sky(model, name):
    """The default model knows a studio backdrop and a blurred light background are not sky (the
    street-only model before it called 27% of the astronaut portrait and 9% of the cat sky)."""
    probability = skyseg_tf.predict_image(model, getattr(skimage_data, name)())
    assert (probability >= 0.5).mean() < 0.05, name


def test_predict_image_default_is_the_preset_at_its_own_scale(model):
    from skyseg_tf.inference import as_predictor

    rocket = skimage_data.rocket()
    default = skyseg_tf.predict_image(rocket)
    np.testing.assert_allclose(default, skyseg_tf.predict_image(model, rocket), atol=1e-5)
    assert as_predictor(None) is as_predictor(None)  # the default preset is built once
    # The model runs with its shorter side at the trained size, not at native resolution.
    prep = preprocessing.get(model)
    assert prep.resize_mode == "short_side"
    seen = []

    class Spy:
        name = model.name

        def __call__(self, images, training=False):
            seen.append(tuple(images.shape[1:3]))
            return model(images, training=training)

    spy = preprocessing.attach(Spy(), prep)
    skyseg_tf.predict_image(spy, rocket)
    short = min(prep.image_size)
    assert seen == [(short, -(-round(640 * short / 427) // 32) * 32)]


def test_save_preset_round_trip(tmp_path, model):
    """A preset written by save_preset loads back with the same outputs (float16 kernels)."""
    rocket = skimage_data.rocket().astype(np.float32)[None, :416, :640]
    reference = np.asarray(model(rocket))
    folder = save_preset(model, tmp_path / "again", model_name=preset_info(DEFAULT_PRESET)["model"],
                         model_kwargs=preset_info(DEFAULT_PRESET)["model_kwargs"],
                         preprocessing=preprocessing.get(model))
    np.testing.assert_allclose(np.asarray(from_preset(str(folder))(rocket)), reference, atol=1e-5)


def test_loads_in_a_fresh_process_and_masks_a_real_photo():
    code = (
        "import numpy as np, skyseg_tf\n"
        "from skimage import data\n"
        "p = skyseg_tf.predict_image(data.rocket())\n"
        f"print(float(p[{ROCKET_SKY[0]}:{ROCKET_SKY[1]}, {ROCKET_SKY[2]}:{ROCKET_SKY[3]}].mean()))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) > 0.8


def test_cli_predict_models_and_export_default_to_the_preset(tmp_path):
    from skyseg_tf.cli import main

    photo = tmp_path / "rocket.jpg"
    Image.fromarray(skimage_data.rocket()).save(photo, quality=95)
    result = CliRunner().invoke(main, ["predict", str(photo), "--out", str(tmp_path / "out"), "--save", "mask"])
    assert result.exit_code == 0, result.output
    mask = np.asarray(Image.open(tmp_path / "out" / "rocket_mask.png")) > 127
    assert mask.shape == (427, 640)
    assert _region(mask, ROCKET_SKY) > 0.8 and _region(mask, ROCKET_GROUND) < 0.3
    listing = CliRunner().invoke(main, ["models"])
    assert f"{DEFAULT_PRESET} (default)" in listing.output
    export = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "export")])
    assert export.exit_code == 0, export.output
    info = json.loads((tmp_path / "export" / "1" / "assets.extra" / "skyseg.json").read_text())
    assert info["preprocessing"] == preprocessing.get(from_preset()).to_dict()
    from skyseg_tf.export import check_saved_model

    differences = check_saved_model(from_preset(), tmp_path / "export" / "1", image_size=(72, 120))
    assert differences["serving_bytes"] < 1e-3 and differences["serving_default"] < 1e-3


@pytest.mark.parametrize("name, config_file", [("sky_unet_efficientnet_lite0", "sky_real_lite0_stage3.yaml"),
                                               ("sky_unet_efficientnet_lite0_streets", "sky_real_lite0.yaml"),
                                               ("sky_unet_mobilenet_v3", "sky_real.yaml"),
                                               ("sky_unet_efficientnet_lite0_fisheye", "sky_fisheye_lite0.yaml")])
def test_each_preset_records_the_committed_config_that_trained_it(name, config_file):
    """The recipe in configs/ is what the shipped weights were trained with (reproducibility)."""
    import dataclasses

    import yaml

    from skyseg_tf.training import TrainConfig

    # Compared as written, not validated: a later stage's initial_weights names the run folder of
    # the stage before, which a fresh checkout does not have. Fields added since take defaults.
    defaults = {field.name: (field.default if field.default is not dataclasses.MISSING else field.default_factory())
                for field in dataclasses.fields(TrainConfig)}
    path = os.path.join(os.path.dirname(__file__), os.pardir, "configs", config_file)
    with open(path, encoding="utf-8") as handle:
        committed = {**defaults, **yaml.safe_load(handle)}
    recorded = {**defaults, **preset_info(name)["config"]}
    for config in (committed, recorded):
        config.pop("run_dir")
    assert json.loads(json.dumps(committed)) == json.loads(json.dumps(recorded))
