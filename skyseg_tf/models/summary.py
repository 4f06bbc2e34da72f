"""Model zoo facts: parameter counts and FLOPs, counted from the layers themselves."""

from __future__ import annotations

import keras

from skyseg_tf.models.registry import build_model, list_models


def _spatial_size(shape) -> int:
    return int(shape[1]) * int(shape[2])


def count_flops(model: keras.Model) -> int:
    """FLOPs of one forward pass for one image: 2 x multiply-adds of convs and dense layers.

    Nested models (the encoder) are walked too. Needs a model built with a fixed input size.
    Element-wise work (BN, activations, resizes) is left out, as is usual for these tables.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs))
        >>> count_flops(model) == 2 * 8 * 8 * 3 * 3 * 3 * 4
        True
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
            continue
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and layer.built:
            out_shape = layer.output.shape
            if out_shape[1] is None:
                raise ValueError(f"count_flops needs a fixed input size; layer {layer.name!r} has output {out_shape}.")
            kernel = layer.kernel.shape  # (kh, kw, in/groups, out) or (kh, kw, in, multiplier)
            macs_per_pixel = int(kernel[0]) * int(kernel[1]) * int(kernel[2]) * int(kernel[3])
            total += 2 * _spatial_size(out_shape) * macs_per_pixel
        elif isinstance(layer, keras.layers.Dense) and layer.built:
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return total


def model_table(size: int = 512, names=None) -> list[dict]:
    """One row per registry model: parameters (total, encoder) and GFLOPs at ``size`` x ``size``.

    Example:
        >>> rows = model_table(64, ["unet_mobilenet_v3_large"])  # doctest: +SKIP
    """
    rows = []
    for name in names or list_models():
        model = build_model(name, encoder_weights=None, input_shape=(size, size, 3))
        encoder = model.get_layer("encoder")
        rows.append({
            "model": name,
            "parameters": model.count_params(),
            "trainable_parameters": sum(int(w.numpy().size) for w in model.trainable_weights),
            "encoder_parameters": encoder.count_params(),
            "gflops": count_flops(model) / 1e9,
            "size": size,
        })
        keras.backend.clear_session()
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
