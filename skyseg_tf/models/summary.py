"""Model zoo facts: parameter counts and FLOPs, counted from the layers themselves."""

from __future__ import annotations

import gc

import keras
import numpy as np

from skyseg_tf.models.registry import build_model, list_models


def _spatial_size(shape) -> int:
    return int(shape[1]) * int(shape[2])


def _fixed_shape(layer, shape):
    if shape[1] is None or shape[2] is None:
        raise ValueError(f"count_flops needs a fixed input size; layer {layer.name!r} has a tensor of shape {shape}.")
    return shape


def _layer_macs(layer) -> int:
    """Multiply-adds one image costs in ``layer``; 0 for layers without a convolution or matmul."""
    from skyseg_tf.models.layers import NearestUpsampleConv2D, SubPixelConv2D

    if not layer.built:
        return 0
    if isinstance(layer, (keras.layers.Conv2DTranspose, NearestUpsampleConv2D, SubPixelConv2D)):
        # A transposed conv scatters every input pixel through its whole kernel. The sub-pixel
        # layers run a 4x4 stride-2 transposed conv (16 taps per input pixel), not the 3x3 conv
        # at the upsampled size they equal (36 per input pixel).
        taps = 16 if not isinstance(layer, keras.layers.Conv2DTranspose) else (
            int(layer.kernel.shape[0]) * int(layer.kernel.shape[1]))
        in_shape = _fixed_shape(layer, layer.input.shape)
        return _spatial_size(in_shape) * taps * int(in_shape[-1]) * layer.filters
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        out_shape = _fixed_shape(layer, layer.output.shape)
        kernel = layer.kernel.shape  # (kh, kw, in/groups, out) or (kh, kw, in, multiplier)
        return _spatial_size(out_shape) * int(kernel[0]) * int(kernel[1]) * int(kernel[2]) * int(kernel[3])
    if isinstance(layer, keras.layers.Dense):
        return int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return 0


def count_flops(model: keras.Model) -> int:
    """FLOPs of one forward pass for one image: 2 x the multiply-adds the model executes.

    Counted: ``Conv2D`` and ``DepthwiseConv2D`` (kernel taps per output pixel), ``Dense``, and
    transposed convolutions, ``Conv2DTranspose`` and the sub-pixel layers of
    :mod:`skyseg_tf.models.optimize` (kernel taps per *input* pixel: every input pixel is
    scattered through the whole kernel). Convention for the rewrites: a
    ``NearestUpsampleConv2D`` or ``SubPixelConv2D`` counts what it runs, a 4x4 stride-2
    transposed convolution of its low-resolution input (``16 * H * W * C_in * C_out``
    multiply-adds), not the 3x3 convolution at the upsampled size it equals (``36 * H * W *
    C_in * C_out``), so a model rewritten by ``split_upsampling_convs`` or
    ``optimize_for_inference`` counts fewer FLOPs than the model as built. Nested models
    (the encoder) are walked too. Needs a model built with a fixed input size. Element-wise
    work (BN, activations, resizes, sums) is left out, as is usual for these tables.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs))
        >>> count_flops(model) == 2 * 8 * 8 * 3 * 3 * 3 * 4
        True
        >>> up = keras.Model(inputs, keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same")(inputs))
        >>> count_flops(up) == 2 * 8 * 8 * 4 * 4 * 3 * 4  # per input pixel
        True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
        else:
            total += 2 * _layer_macs(layer)
    return total


def model_table(size: int = 512, names=None) -> list[dict]:
    """One row per registry model: parameters (total, encoder) and GFLOPs at ``size`` x ``size``.

    Each model is built, counted and deleted; the caller's Keras session (its models, the
    counters behind auto-generated layer names) is left alone.

    Example:
        >>> rows = model_table(64, ["unet_mobilenet_v3_large"])
        >>> rows[0]["model"], rows[0]["size"]
        ('unet_mobilenet_v3_large', 64)
    """
    rows = []
    for name in names or list_models():
        model = build_model(name, encoder_weights=None, input_shape=(size, size, 3))
        rows.append({
            "model": name,
            "parameters": model.count_params(),
            "trainable_parameters": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
            "encoder_parameters": model.get_layer("encoder").count_params(),
            "gflops": count_flops(model) / 1e9,
            "size": size,
        })
        del model
        gc.collect()  # frees the model now, without clearing the caller's session
    return rows


def format_model_table(rows: list[dict]) -> str:
    """Markdown for :func:`model_table` rows.

    Example:
        >>> print(format_model_table([{"model": "m", "parameters": 10, "trainable_parameters": 8,
        ...                            "encoder_parameters": 4, "gflops": 1.5, "size": 512}]).splitlines()[2])
        | `m` | 10 | 8 | 4 | 1.5 |
    """
    size = rows[0]["size"] if rows else 512
    lines = [
        f"| model | parameters | trainable | encoder parameters | GFLOPs at {size}x{size} |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['model']}` | {row['parameters']:,} | {row['trainable_parameters']:,} | "
            f"{row['encoder_parameters']:,} | {row['gflops']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m skyseg_tf.models.summary
    print(format_model_table(model_table()))
