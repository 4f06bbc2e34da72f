"""SavedModel (TF Serving layout, two signatures) and TFLite exports agree with Keras."""

import base64
import importlib.util
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from PIL import Image  # noqa: E402

from skyseg_tf import export  # noqa: E402
from skyseg_tf.inference import SkyPredictor, load_model, predict_image  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT_SIZE = (64, 64)


def png_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def scene(height, width, seed):
    from skyseg_tf.data.synthetic import render_scene

    return render_scene(np.random.default_rng([7, seed]), height, width)[0]


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    model = tiny_model
    base = tmp_path_factory.mktemp("export") / "export"
    version_dir = export.export_saved_model(model, base, version=1, image_size=EXPORT_SIZE)
    return model, base, version_dir


def test_layout_and_info_file(exported):
    model, base, version_dir = exported
    assert version_dir == base / "1"
    assert (version_dir / "saved_model.pb").exists() and (version_dir / "variables").is_dir()
    info = export.read_export_info(version_dir)
    assert info["image_size"] == list(EXPORT_SIZE) and info["stride"] == 32
    # The default export is optimize_for_inference's rewrite (the other tests compare its
    # outputs with the model as built); optimize=False exports the model as it is.
    assert info["optimized_for_inference"] is True
    plain = export.export_saved_model(model, base, version=7, image_size=EXPORT_SIZE, optimize=False)
    assert export.read_export_info(plain)["optimized_for_inference"] is False
    with pytest.raises(FileExistsError, match="version=2"):
        export.export_saved_model(model, base, version=1)
    with pytest.raises(ValueError, match="version"):
        export.export_saved_model(model, base, version=0)


FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf

data = np.load(sys.argv[1], allow_pickle=False)
loaded = tf.saved_model.load(sys.argv[2])
result = {"skyseg_imported": any(m.startswith("skyseg_tf") for m in sys.modules),
          "signatures": sorted(loaded.signatures)}
default = loaded.signatures["serving_default"]
for key in ("even", "odd"):
    out = default(images=tf.constant(data["images_" + key]))["sky_probability"].numpy()
    result["default_" + key] = float(np.abs(out[..., 0] - data["expected_" + key]).max())
served = loaded.signatures["serving_bytes"]
encoded = [data["png%d" % k].tobytes() for k in range(3)]
out = served(image_bytes=tf.constant(encoded))
sizes = out["image_size"].numpy().tolist()
result["sizes"] = sizes
result["shape"] = list(out["sky_probability"].shape)
diffs, padding, mask_ok = [], 0.0, True
for k, (h, w) in enumerate(sizes):
    p = out["sky_probability"].numpy()[k]
    diffs.append(float(np.abs(p[:h, :w, 0] - data["expected_png%d" % k]).max()))
    padding = max(padding, float(np.abs(p[h:]).max(initial=0)), float(np.abs(p[:, w:]).max(initial=0)))
    mask_ok &= bool(((p >= 0.5) == (out["sky_mask"].numpy()[k] == 1)).all())
result.update(bytes_diffs=diffs, padding=padding, mask_ok=mask_ok, mask_dtype=out["sky_mask"].dtype.name)
errors = {}
for name, payload in (("garbage", b"definitely not an image"), ("truncated_png", encoded[0][:60])):
    try:
        served(image_bytes=tf.constant([encoded[1], payload]))
        errors[name] = None
    except tf.errors.InvalidArgumentError as error:
        errors[name] = error.message
result["errors"] = errors
print("RESULT" + json.dumps(result))
"""


def test_fresh_process_matches_keras_for_both_signatures(exported, tmp_path):
    model, _, version_dir = exported
    predictor = SkyPredictor(model)
    images_even = np.stack([scene(64, 96, k) for k in range(2)]).astype(np.float32)
    images_odd = scene(50, 70, 5)[None].astype(np.float32)  # not divisible by 32: padded inside
    arrays = {
        "images_even": images_even, "expected_even": predictor(images_even),
        "images_odd": images_odd, "expected_odd": predictor(images_odd),
    }
    for k, (h, w) in enumerate([(50, 70), (64, 64), (40, 100)]):
        image = scene(h, w, 10 + k)
        arrays[f"png{k}"] = np.frombuffer(png_bytes(image), np.uint8)
        arrays[f"expected_png{k}"] = predict_image(predictor, image, input_size=EXPORT_SIZE, mode="resize")
    data_path = tmp_path / "data.npz"
    np.savez(data_path, **arrays)
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, str(script), str(data_path), str(version_dir)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=str(tmp_path))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT"):])

    assert result["skyseg_imported"] is False
    assert result["signatures"] == ["serving_bytes", "serving_default"]
    assert result["default_even"] < 1e-4 and result["default_odd"] < 1e-4
    assert result["sizes"] == [[50, 70], [64, 64], [40, 100]]
    assert result["shape"] == [3, 64, 100, 1]  # padded to the largest height and width
    assert max(result["bytes_diffs"]) < 1e-4
    assert result["padding"] == 0.0 and result["mask_ok"] and result["mask_dtype"] == "uint8"
    assert "not an encoded JPEG, PNG" in result["errors"]["garbage"]
    assert "Index" in result["errors"]["garbage"]
    assert "Invalid PNG data" in (result["errors"]["truncated_png"] or "")  # TensorFlow's decoder names it


def test_saved_model_cli_lists_both_signatures(exported):
    _, _, version_dir = exported
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir", str(version_dir), "--all"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['serving_bytes']", "inputs['images']",
                 "inputs['image_bytes']", "outputs['sky_probability']", "outputs['sky_mask']",
                 "outputs['image_size']", "DT_STRING", "shape: (-1, -1, -1, 3)"):
        assert text in done.stdout


def test_large_image_keeps_its_size_and_load_model_reads_the_export(exported):
    model, base, version_dir = exported
    loaded = tf.saved_model.load(str(version_dir))
    rows = np.linspace(0, 255, 3000, dtype=np.float32)[:, None, None]
    photo = np.broadcast_to(rows, (3000, 2000, 3)).astype(np.uint8)  # compresses well as PNG
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant([png_bytes(photo)]))
    assert out["sky_probability"].shape == (1, 3000, 2000, 1)
    assert out["image_size"].numpy().tolist() == [[3000, 2000]]

    served = load_model(base)  # TF Serving base folder: picks the highest version
    image = scene(64, 64, 3)
    np.testing.assert_allclose(predict_image(served, image, mode="tile"), predict_image(model, image, mode="tile"),
                               atol=1e-4)
    diffs = export.check_saved_model(model, version_dir, image_size=(50, 70))
    assert diffs["serving_default"] < 1e-4 and diffs["serving_bytes"] < 1e-4


def load_serve_client():
    spec = importlib.util.spec_from_file_location("serve_client", os.path.join(REPO_ROOT, "examples", "serve_client.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serve_client_request_bodies_drive_the_signatures(exported, tmp_path, capsys):
    _, _, version_dir = exported
    client = load_serve_client()
    paths = []
    for k, (h, w) in enumerate([(40, 60), (64, 64)]):
        paths.append(tmp_path / f"p{k}.png")
        Image.fromarray(scene(h, w, 20 + k)).save(paths[-1])
    body_path = tmp_path / "body.json"
    assert client.main([str(p) for p in paths] + ["--body-out", str(body_path)]) == 0
    assert client.DOCKER_COMMAND in capsys.readouterr().out
    body = json.loads(body_path.read_text())
    assert body["signature_name"] == "serving_bytes"
    # What TF Serving does with the body: base64-decode each instance into the named input.
    decoded = [base64.b64decode(instance["image_bytes"]["b64"]) for instance in body["instances"]]
    assert decoded == [p.read_bytes() for p in paths]
    loaded = tf.saved_model.load(str(version_dir))
    outputs = loaded.signatures[body["signature_name"]](image_bytes=tf.constant(decoded))
    predictions = [{key: value.numpy()[k].tolist() for key, value in outputs.items()} for k in range(2)]
    masks = client.masks_from_predictions(predictions, "serving_bytes")
    assert [m.shape for m in masks] == [(40, 60), (64, 64)]

    default_body = client.default_request_body(paths, size=(32, 32))
    instances = np.asarray([i["images"] for i in default_body["instances"]], np.float32)
    assert instances.shape == (2, 32, 32, 3) and default_body["signature_name"] == "serving_default"
    out = loaded.signatures["serving_default"](images=tf.constant(instances))["sky_probability"]
    assert out.shape == (2, 32, 32, 1)
    with pytest.raises(SystemExit) as exit_info:
        client.main(["--help"])
    assert exit_info.value.code == 0
    assert client.main([str(paths[0]), "--send", "--url", "http://127.0.0.1:9/v1/models/skyseg:predict"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("quantization, tolerance", [(None, 1e-4), ("float16", 2e-2)])
def test_tflite_matches_keras(tiny_model, tmp_path, quantization, tolerance):
    model = tiny_model
    path = export.export_tflite(model, tmp_path / "sky.tflite", image_size=EXPORT_SIZE, quantization=quantization)
    report = export.check_tflite(model, path, num_images=2)
    assert report["image_size"] == EXPORT_SIZE
    assert report["max_abs_diff"] < tolerance
    if quantization == "float16":
        assert path.stat().st_size < 0.6 * model.count_params() * 4


def test_tflite_argument_errors(tiny_model, tmp_path):
    model = tiny_model
    with pytest.raises(ValueError, match="quantization"):
        export.export_tflite(model, tmp_path / "a.tflite", quantization="int4")
    with pytest.raises(ValueError, match=r"\.tflite"):
        export.export_tflite(model, tmp_path / "a.bin")
    with pytest.raises(ValueError, match=r"divisible by 32.*\(64, 96\)"):
        export.export_tflite(model, tmp_path / "a.tflite", image_size=(50, 70))
