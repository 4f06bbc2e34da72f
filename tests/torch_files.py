"""Writes PyTorch state_dict files without PyTorch, opcode by opcode, for the checkpoint reader's tests.

The pickle is what ``torch.save(state_dict)`` writes: ``OrderedDict([(name, tensor), ...])`` where each
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``
and each storage a persistent id ``("storage", torch.FloatStorage, key, "cpu", numel)``.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile

import numpy as np

from skyseg_tf.models.torch_checkpoint import LEGACY_MAGIC, LEGACY_PROTOCOL

_TYPE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage",
               np.dtype("float64"): "DoubleStorage", np.dtype("int64"): "LongStorage",
               np.dtype("int32"): "IntStorage", np.dtype("uint8"): "ByteStorage"}


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _value(value) -> bytes:
    return pickle.dumps(value, protocol=2)[2:-1]  # Without the PROTO header and STOP.


def state_dict_pickle(arrays, extra_global=None):
    """The pickle bytes and ``[(key, array)]`` storages of a state_dict of ``arrays``."""
    storages = []
    body = io.BytesIO()
    body.write(b"\x80\x02" + _global("collections", "OrderedDict") + b")R")
    for index, (name, array) in enumerate(arrays.items()):
        array = np.array(array, order="C")
        key = str(index)
        storages.append((key, array))
        stride = tuple(int(s // array.itemsize) for s in array.strides)
        body.write(_value(name) + _global("torch._utils", "_rebuild_tensor_v2") + b"(")
        body.write(b"(" + _value("storage") + _global("torch", _TYPE_NAMES[array.dtype]))
        body.write(_value(key) + _value("cpu") + _value(int(array.size)) + b"tQ")
        body.write(_value(0) + _value(tuple(array.shape)) + _value(stride) + b"\x89")
        body.write(_global("collections", "OrderedDict") + b")RtRs")
    if extra_global is not None:  # A reference to any other global, as a malicious file would hold.
        body.write(_value("evil") + _global(*extra_global) + b"s")
    body.write(b".")
    return body.getvalue(), storages


def write_legacy(path, arrays, extra_global=None) -> None:
    """``torch.save``'s format before PyTorch 1.6: five pickles, then each storage's bytes."""
    body, storages = state_dict_pickle(arrays, extra_global)
    with open(path, "wb") as file:
        file.write(pickle.dumps(LEGACY_MAGIC, protocol=2))
        file.write(pickle.dumps(LEGACY_PROTOCOL, protocol=2))
        file.write(pickle.dumps({"protocol_version": LEGACY_PROTOCOL, "little_endian": True}, protocol=2))
        file.write(body)
        file.write(pickle.dumps([key for key, _ in storages], protocol=2))
        for _, array in storages:
            file.write(struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes())


def write_zip(path, arrays) -> None:
    """``torch.save``'s zip format (PyTorch 1.6 and later): ``archive/data.pkl`` and ``archive/data/<key>``."""
    body, storages = state_dict_pickle(arrays)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", body)
        archive.writestr("archive/version", "3\n")
        for key, array in storages:
            archive.writestr(f"archive/data/{key}", array.tobytes())
