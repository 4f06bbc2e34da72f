"""Query a skyseg SavedModel served by TensorFlow Serving (REST or gRPC).

Serve an export (``skyseg export`` or ``skyseg_tf.export.export_saved_model`` wrote
``export/1/``) with::

    docker run -p 8501:8501 -p 8500:8500 -v "$PWD/export:/models/skyseg" -e MODEL_NAME=skyseg tensorflow/serving

then::

    python examples/serve_client.py photo.jpg --send                  # REST, serving_bytes
    python examples/serve_client.py photo.jpg --send --out-dir masks  # also write the masks
    python examples/serve_client.py photo.jpg --signature default --size 512 512 --send
    python examples/serve_client.py photo.jpg --grpc localhost:8500   # needs skyseg-tf[serving]
    python examples/serve_client.py photo.jpg --body-out body.json    # only build the request

REST bodies: ``serving_bytes`` takes the files' bytes, base64-encoded, as
``{"signature_name": "serving_bytes", "instances": [{"image_bytes": {"b64": "..."}}]}`` and
answers per instance ``sky_probability``, ``sky_mask`` (padded to the largest image of the request)
and ``image_size``; ``serving_default`` takes float arrays ``[H, W, 3]`` of RGB in [0, 255]. Needs
only numpy and Pillow (and tensorflow-serving-api for gRPC).

Example:
    >>> body = bytes_request_body([])
    >>> body["signature_name"]
    'serving_bytes'
"""

from __future__ import annotations

import argparse
import base64
import json
import pathlib
import sys
import urllib.error
import urllib.request

import numpy as np

DOCKER_COMMAND = ('docker run -p 8501:8501 -p 8500:8500 -v "$PWD/export:/models/skyseg" '
                  "-e MODEL_NAME=skyseg tensorflow/serving")
DEFAULT_URL = "http://localhost:8501/v1/models/skyseg:predict"
SIGNATURES = {"bytes": "serving_bytes", "default": "serving_default"}
INPUTS = {"serving_bytes": "image_bytes", "serving_default": "images"}


def bytes_request_body(paths) -> dict:
    """REST body for ``serving_bytes``: each file's bytes, base64-encoded, unchanged.

    Example:
        >>> bytes_request_body([])["instances"]
        []
    """
    instances = []
    for path in paths:
        encoded = base64.b64encode(pathlib.Path(path).read_bytes()).decode("ascii")
        instances.append({INPUTS["serving_bytes"]: {"b64": encoded}})
    return {"signature_name": "serving_bytes", "instances": instances}


def load_rgb(path, size=None) -> np.ndarray:
    """Reads an image as RGB float32 ``[H, W, 3]`` in [0, 255] (EXIF orientation applied),
    resized (bilinear, antialiased) to ``size = (height, width)`` if given.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> Image.new("RGB", (8, 6)).save(path)
        >>> load_rgb(path, (4, 4)).shape
        (4, 4, 3)
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        if size is not None:
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(image, np.float32)


def default_request_body(paths, size=None) -> dict:
    """REST body for ``serving_default``: float arrays ``[H, W, 3]`` (all images one size).

    Example:
        >>> default_request_body([])["signature_name"]
        'serving_default'
    """
    arrays = [load_rgb(path, size) for path in paths]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError("serving_default takes one batch of equal-sized images; pass --size H W.")
    return {"signature_name": "serving_default",
            "instances": [{INPUTS["serving_default"]: a.tolist()} for a in arrays]}


def send_rest(body: dict, url: str = DEFAULT_URL, timeout: float = 120.0) -> dict:
    """POSTs a JSON body to TF Serving's REST API and returns the decoded answer.

    Example:
        >>> send_rest(bytes_request_body(["photo.jpg"]))["predictions"][0].keys()  # doctest: +SKIP
        dict_keys(['image_size', 'sky_mask', 'sky_probability'])
    """
    request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # TF Serving puts the reason in {"error": ...}
        raise RuntimeError(f"{url} answered {error.code}: {error.read().decode('utf-8', 'replace')}") from None
    except urllib.error.URLError as error:
        raise RuntimeError(f"cannot reach {url} ({error.reason}). Is TF Serving running? {DOCKER_COMMAND}") from None


def grpc_predict(paths, target: str = "localhost:8500", model_name: str = "skyseg", timeout: float = 120.0):
    """Calls ``serving_bytes`` over gRPC; returns ``{output name: numpy array}``.

    Needs the ``serving`` extra (``pip install 'skyseg-tf[serving]'``: tensorflow-serving-api).

    Example:
        >>> grpc_predict(["photo.jpg"])["sky_mask"].shape  # doctest: +SKIP
        (1, 3000, 4000, 1)
    """
    try:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as error:
        raise ImportError(
            "gRPC needs tensorflow-serving-api: pip install 'skyseg-tf[serving]'"
        ) from error
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_bytes"
    data = [pathlib.Path(p).read_bytes() for p in paths]
    request.inputs[INPUTS["serving_bytes"]].CopyFrom(tf.make_tensor_proto(data, dtype=tf.string, shape=[len(data)]))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def masks_from_predictions(predictions, signature: str) -> list:
    """Per-image boolean sky masks ``[H, W]`` from a REST answer's ``predictions``.

    Example:
        >>> p = [{"sky_mask": [[[1], [0]]], "image_size": [1, 1], "sky_probability": [[[0.9], [0.0]]]}]
        >>> masks_from_predictions(p, "serving_bytes")[0].tolist()
        [[True]]
    """
    masks = []
    for prediction in predictions:
        if signature == "serving_bytes":
            height, width = prediction["image_size"]
            masks.append(np.asarray(prediction["sky_mask"], np.uint8)[:height, :width, 0] > 0)
        else:
            probability = prediction["sky_probability"] if isinstance(prediction, dict) else prediction
            masks.append(np.asarray(probability, np.float32)[..., 0] >= 0.5)
    return masks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Build TF Serving requests for a skyseg export and send them (REST or gRPC).",
        epilog=f"Serve the export first: {DOCKER_COMMAND}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", help="JPEG/PNG files")
    parser.add_argument("--signature", choices=sorted(SIGNATURES), default="bytes",
                        help="bytes: encoded files (serving_bytes, default); default: float arrays")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="resize before sending with --signature default")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"REST endpoint (default {DEFAULT_URL})")
    parser.add_argument("--send", action="store_true", help="POST the request to --url")
    parser.add_argument("--grpc", metavar="HOST:PORT", help="call serving_bytes over gRPC instead of REST")
    parser.add_argument("--body-out", help="write the REST request body (JSON) to this file")
    parser.add_argument("--out-dir", help="write the returned masks as PNG files here")
    return parser.parse_args(argv)


def _write_masks(masks, paths, out_dir):
    from PIL import Image

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for mask, path in zip(masks, paths):
        target = out / f"{pathlib.Path(path).stem}_mask.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(target)
        print(f"  {path}: sky {100 * mask.mean():.1f}% -> {target}")


def main(argv=None) -> int:
    """Builds the request, sends it if asked, prints what came back; returns the exit status."""
    args = parse_args(argv)
    signature = SIGNATURES[args.signature]
    try:
        if args.grpc:
            outputs = grpc_predict(args.images, args.grpc)
            masks = [outputs["sky_mask"][k, :h, :w, 0] > 0 for k, (h, w) in enumerate(outputs["image_size"])]
            _write_masks(masks, args.images, args.out_dir or ".")
            return 0
        if signature == "serving_bytes":
            body = bytes_request_body(args.images)
        else:
            body = default_request_body(args.images, args.size)
        if args.body_out:
            pathlib.Path(args.body_out).write_text(json.dumps(body))
            print(f"wrote the {signature} request body for {len(args.images)} image(s) to {args.body_out}")
        if not args.send:
            print(f"POST it to {args.url} (add --send), after serving the export with:\n  {DOCKER_COMMAND}")
            return 0
        answer = send_rest(body, args.url)
        masks = masks_from_predictions(answer["predictions"], signature)
        if args.out_dir:
            _write_masks(masks, args.images, args.out_dir)
        else:
            for mask, path in zip(masks, args.images):
                print(f"  {path}: {mask.shape[0]}x{mask.shape[1]}, sky {100 * mask.mean():.1f}%")
    except (OSError, ValueError, RuntimeError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
