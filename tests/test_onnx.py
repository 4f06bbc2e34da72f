"""The ONNX export runs in onnxruntime, in a fresh process, and agrees with Keras."""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")
import keras  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from skyseg_tf import export  # noqa: E402
from skyseg_tf.inference import resize_images  # noqa: E402
from skyseg_tf.losses import sky_probability  # noqa: E402

skimage_data = pytest.importorskip("skimage.data")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# Runs an ONNX file on the arrays of an .npz in a fresh interpreter that has only NumPy and
# onnxruntime: what a client without skyseg_tf or TensorFlow does.
FRESH_PROCESS = r"""
import json, sys
import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
data = np.load(sys.argv[2])
inputs, outputs = session.get_inputs(), session.get_outputs()
np.savez(sys.argv[3], **{key: session.run(["sky_probability"], {"images": data[key]})[0] for key in data.files})
print("RESULT" + json.dumps({
    "inputs": [[i.name, [d if isinstance(d, int) else None for d in i.shape], i.type] for i in inputs],
    "outputs": [[o.name, o.type] for o in outputs],
    "metadata": session.get_modelmeta().custom_metadata_map,
    "imported": sorted(m for m in ("tensorflow", "keras", "skyseg_tf") if m in sys.modules),
}))
"""


def run_fresh(onnx_path, batches, tmp_path):
    """Runs ``onnx_path`` on each batch in a fresh process; returns (outputs, facts)."""
    data_path, out_path = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(data_path, **batches)
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(onnx_path), str(data_path), str(out_path)],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    with np.load(out_path) as outputs:
        return {key: outputs[key] for key in outputs.files}, json.loads(lines[0][len("RESULT"):])


def keras_probability(model, images):
    return export._sky_probability(model, tf.constant(images)).numpy()


def photo_at(name, size):
    """A public-domain scikit-image photo resized (as the pipeline resizes) to ``size``."""
    image = np.asarray(getattr(skimage_data, name)())[..., :3]
    return resize_images(image[None], size).numpy()


def small_model(input_shape=(None, None, 3), activation="sigmoid", name="small"):
    """A two-layer model: converts in about a second, for the tests of errors and options."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation=activation, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


class IncompleteGamma(keras.layers.Layer):
    """A layer on a TensorFlow op that ONNX has no counterpart for (Igamma)."""

    def call(self, inputs):
        return tf.math.igamma(inputs + 1.0, inputs + 1.0)


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return tiny_model, export.export_onnx(tiny_model, path, verify=False)


def test_fresh_process_matches_keras_at_two_sizes(exported, tmp_path):
    model, path = exported
    rng = np.random.default_rng(3)
    batches = {  # different batch sizes and shapes through one session: all three axes dynamic
        "random_and_photo_64x96": np.concatenate([rng.uniform(0, 255, (1, 64, 96, 3)),
                                                  photo_at("astronaut", (64, 96))]).astype(np.float32),
        "photo_128x64": photo_at("coffee", (128, 64)).astype(np.float32),
    }
    outputs, facts = run_fresh(path, batches, tmp_path)

    assert facts["imported"] == []  # the client needs neither TensorFlow nor skyseg_tf
    assert facts["inputs"] == [["images", [None, None, None, 3], "tensor(float)"]]
    assert facts["outputs"] == [["sky_probability", "tensor(float)"]]
    metadata = facts["metadata"]
    assert metadata["stride"] == "32" and metadata["model_name"] == model.name
    assert metadata["input"] == "images" and metadata["output"] == "sky_probability"
    for key, images in batches.items():
        assert outputs[key].shape == (*images.shape[:3], 1)
        np.testing.assert_allclose(outputs[key], keras_probability(model, images), atol=1e-4, rtol=0)


def test_check_onnx_and_verified_export(exported, tmp_path):
    model, path = exported
    report = export.check_onnx(model, path)
    assert report["max_abs_diff"] < 1e-4
    assert report["image_sizes"] == [(64, 96), (96, 64)] and report["batch_sizes"] == [2, 3]
    assert report["input"] == ["images", [None, None, None, 3]] and report["outputs"] == ["sky_probability"]
    with pytest.raises(ValueError, match=r"divisible by 32.*64x96"):
        export.check_onnx(model, path, image_sizes=[(50, 70)])

    fresh = export.export_onnx(model, tmp_path / "sub" / "verified.onnx")  # verify=True by default
    assert sorted(p.name for p in fresh.parent.iterdir()) == ["verified.onnx"]


def test_logits_model_exports_probabilities(tmp_path):
    model = small_model(activation=None, name="logits")
    path = export.export_onnx(model, tmp_path / "logits.onnx")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 64, 3)).astype(np.float32)
    outputs, _ = run_fresh(path, {"images": images}, tmp_path)
    logits = model(images).numpy()
    assert logits.min() < 0 or logits.max() > 1  # really logits
    np.testing.assert_allclose(outputs["images"], sky_probability(logits, from_logits=True), atol=1e-5)


def test_fixed_size_model_keeps_its_size(tmp_path):
    model = small_model(input_shape=(64, 32, 3), name="fixed")
    path = export.export_onnx(model, tmp_path / "fixed.onnx")
    report = export.check_onnx(model, path)
    assert report["input"] == ["images", [None, 64, 32, 3]]
    assert report["image_sizes"] == [(64, 32)] and report["max_abs_diff"] < 1e-5


def test_unsupported_layer_gives_clear_error_and_writes_nothing(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(1, 3, padding="same", name="conv")(inputs)
    model = keras.Model(inputs, IncompleteGamma(name="incomplete_gamma")(x), name="odd_model")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"a previous export")
    with pytest.raises(export.OnnxExportError) as error:
        export.export_onnx(model, path)
    message = str(error.value)
    for text in ("odd_model", "layer 'incomplete_gamma'", "Igamma", "SavedModel", "TFLite"):
        assert text in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no partial file
    assert path.read_bytes() == b"a previous export"  # the previous export is kept


def test_failed_verification_writes_nothing(tmp_path, monkeypatch):
    model = small_model()
    monkeypatch.setattr(export, "check_onnx", lambda *args, **kwargs: {"max_abs_diff": 0.25,
                                                                       "image_sizes": [(64, 96)]})
    with pytest.raises(export.OnnxExportError, match=r"small: .*differs from Keras by 0\.25"):
        export.export_onnx(model, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_wrong_output_rank_is_converted_again(tmp_path, monkeypatch):
    """tf2onnx now and then leaves the output as [1, B, H, W, 1]; export_onnx converts again."""
    from onnx import TensorShapeProto

    convert, calls = export._convert_to_onnx, []

    def wrong_at_first(*args, bad_calls=1):
        proto = convert(*args)
        calls.append(args)
        if len(calls) <= bad_calls:
            proto.graph.output[0].type.tensor_type.shape.dim.insert(0, TensorShapeProto.Dimension(dim_value=1))
        return proto

    model = small_model()
    monkeypatch.setattr(export, "_convert_to_onnx", wrong_at_first)
    path = export.export_onnx(model, tmp_path / "model.onnx")
    assert len(calls) == 2 and export.check_onnx(model, path)["max_abs_diff"] < 1e-5
    monkeypatch.setattr(export, "_convert_to_onnx", lambda *args: wrong_at_first(*args, bad_calls=99))
    with pytest.raises(export.OnnxExportError, match="5-dimensional output .* in 3 attempts"):
        export.export_onnx(model, tmp_path / "other.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_missing_packages_name_the_extra(tmp_path, monkeypatch):
    from skyseg_tf.cli import main

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # what an install without the extra sees
    with pytest.raises(export.OnnxNotInstalledError, match=r'tf2onnx.*pip install "skyseg-tf\[onnx\]"'):
        export.export_onnx(small_model(), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []
    result = CliRunner().invoke(main, ["export", "--model", "no-such-model", "--out", str(tmp_path / "out"),
                                       "--onnx"])
    assert result.exit_code == 1 and 'pip install "skyseg-tf[onnx]"' in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # fails before loading or exporting anything


def test_argument_errors(tmp_path):
    model = small_model()
    with pytest.raises(ValueError, match=r"\.onnx"):
        export.export_onnx(model, tmp_path / "model.bin")
    with pytest.raises(ValueError, match="opset"):
        export.export_onnx(model, tmp_path / "model.onnx", opset=9)
    with pytest.raises(ValueError, match="atol"):
        export.export_onnx(model, tmp_path / "model.onnx", atol=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_export_onnx_with_a_relative_out_as_the_docs_write_it(tiny_model, tmp_path, monkeypatch):
    """``skyseg export --onnx --out exported/`` (docs/export.md): the onnxruntime check, in a
    fresh process with another working folder, must find the relative file (issue #21)."""
    from skyseg_tf.cli import main

    tiny_model.save(tmp_path / "tiny.keras")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "--model", "tiny.keras", "--onnx", "--out", "exported/"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "exported"
    assert (out / "1" / "saved_model.pb").exists() and (out / "model.onnx").exists()
    assert sorted(p.name for p in out.iterdir()) == ["1", "model.onnx"]  # no partial file left
    assert f"ONNX: {pathlib.Path('exported', 'model.onnx')}" in result.output


@pytest.mark.slow
def test_pretrained_preset_matches_keras_on_photos(tmp_path):
    import skyseg_tf
    from skyseg_tf import preprocessing

    model = skyseg_tf.from_preset()
    path = export.export_onnx(model, tmp_path / "model.onnx", verify=False)
    scale = preprocessing.get(model)
    batches = {}
    for name in ("rocket", "coffee"):  # 427x640 and 400x600: working size 256x384 (with the pad)
        image = np.asarray(getattr(skimage_data, name)())[..., :3]
        size = scale.working_size(image.shape)
        size = tuple(-(-v // 32) * 32 for v in size)
        batches[name] = photo_at(name, size).astype(np.float32)
    batches["astronaut"] = photo_at("astronaut", scale.working_size((512, 512))).astype(np.float32)
    outputs, facts = run_fresh(path, batches, tmp_path)
    assert json.loads(facts["metadata"]["preprocessing"]) == scale.to_dict()
    sky = keras_probability(model, batches["rocket"])
    assert (sky > 0.5).mean() > 0.2 and (sky < 0.5).mean() > 0.2  # a photo with sky and ground
    for key, images in batches.items():
        np.testing.assert_allclose(outputs[key], keras_probability(model, images), atol=1e-4, rtol=0)


def test_docs_client_snippet_runs(tmp_path):
    """The onnxruntime client of docs/export.md, pasted as it is, on a short_side model."""
    from PIL import Image

    from skyseg_tf import preprocessing
    from skyseg_tf.inference import predict_image

    text = (REPO_ROOT / "docs" / "export.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text[text.index("## ONNX"):], flags=re.S)
    client = next(block for block in blocks if "onnxruntime.InferenceSession" in block)
    inputs = keras.Input((None, None, 3))  # sky = blue minus red above 30: a mask worth comparing
    head = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")
    model = keras.Model(inputs, head(inputs), name="blueness")
    kernel = np.zeros((3, 3, 3, 1), np.float32)
    kernel[:, :, 0], kernel[:, :, 2] = -1 / 72, 1 / 72
    head.set_weights([kernel, np.array([-30 / 8], np.float32)])
    preprocessing.attach(model, preprocessing.Preprocessing("short_side", (64, 64)))
    export.export_onnx(model, tmp_path / "exported" / "model.onnx")
    photo = photo_at("rocket", (150, 225)).astype(np.uint8)[0]  # working size 64x96, padded to 64x96
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    done = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sky: " in done.stdout and "of 225x150" in done.stdout
    mask = np.asarray(Image.open(tmp_path / "photo_sky.png")) > 0
    expected = predict_image(model, np.asarray(Image.open(tmp_path / "photo.jpg"))) >= 0.5
    assert mask.shape == (150, 225) and 0.2 < expected.mean() < 0.8
    assert (mask != expected).mean() < 0.02  # Pillow's resizing, not TensorFlow's: a few edge pixels
