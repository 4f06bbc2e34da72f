"""Reads the tensors of a PyTorch checkpoint (``.pth``) without PyTorch, and without running it.

Pretrained encoders are published as PyTorch ``state_dict`` files far more often than as Keras
files; some even ship inside PyPI packages. A ``.pth`` file is a pickle, and unpickling runs
whatever the file asks for, so this reader never calls :func:`pickle.load` on it with the usual
globals: its unpickler knows only the few names a ``state_dict`` needs (the tensor rebuild
functions, the storage types and ``OrderedDict``) and refuses every other one. It understands both
layouts ``torch.save`` has written: the zip archive (PyTorch 1.6 and later) and the legacy stream
of pickles before it.

Example:
    >>> from skyseg_tf.models.efficientnet_lite import pretrained_weights_path
    >>> state = read_torch_state_dict(pretrained_weights_path())  # doctest: +SKIP
    >>> state["_conv_stem.weight"].shape  # doctest: +SKIP
    (32, 3, 3, 3)
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

# torch.save's magic number and protocol version of the legacy (pre zip) format.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # No NumPy dtype; refused with a clear message.
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchCheckpointError(ValueError):
    """A file that is not a PyTorch ``state_dict`` this reader can take; the message says why."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage named in the pickle; its bytes are attached once they have been read."""

    def __init__(self, storage_type: _StorageType, key: str, numel: int):
        if storage_type.dtype is None:
            raise TorchCheckpointError(f"tensors of type {storage_type.name} have no NumPy type; save the "
                                       "checkpoint in float32 (model.float()) first.")
        self.dtype = np.dtype(storage_type.dtype)
        self.key = key
        self.numel = int(numel)
        self.array: np.ndarray | None = None


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise TorchCheckpointError(f"storage {self.storage.key!r} is named but its data is missing.")
        # as_strided does not check bounds: a crafted size or stride must not read past the data.
        if (any(int(n) < 0 for n in self.size) or any(int(s) < 0 for s in self.stride)
                or len(self.stride) != len(self.size) or self.offset < 0):
            raise TorchCheckpointError(f"a tensor of storage {self.storage.key!r} has a negative or "
                                       f"mismatched size {self.size} / stride {self.stride}.")
        last = self.offset + sum((int(n) - 1) * int(s) for n, s in zip(self.size, self.stride) if n > 0)
        if (0 not in self.size) and last >= data.size:
            raise TorchCheckpointError(f"a tensor of storage {self.storage.key!r} reaches element {last}, "
                                       f"past the storage's {data.size}: the file is damaged.")
        if not self.size:
            return data[self.offset].copy()
        if 0 in self.size:
            return np.zeros(self.size, data.dtype)
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
}


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str, storages: dict):
        super().__init__(file)
        self._path = path
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchCheckpointError(
            f"{self._path}: the checkpoint refers to {module}.{name}, which a plain state_dict does not "
            "hold, so it is not read (unpickling it could run code). Save the model's state_dict "
            "(torch.save(model.state_dict(), path)) and pass that file."
        )

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchCheckpointError(f"{self._path}: unknown persistent id {pid!r} in the checkpoint.")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]  # pid[3]: the device it was saved from
        if not isinstance(storage_type, _StorageType):
            raise TorchCheckpointError(f"{self._path}: storage {key!r} has no known tensor type.")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type, key, numel)
        return self._storages[key]


def _to_arrays(state, path: str) -> dict[str, np.ndarray]:
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TorchCheckpointError(f"{path}: holds a {type(state).__name__}, not a state_dict (a dict of tensors).")
    arrays = {}
    for name, value in state.items():
        if isinstance(value, _Tensor):
            arrays[str(name)] = value.to_numpy()
    if not arrays:
        raise TorchCheckpointError(f"{path}: the state_dict holds no tensors.")
    return arrays


def _read_zip(path: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise TorchCheckpointError(f"{path}: a zip file without data.pkl is not a PyTorch checkpoint.")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        with archive.open(pickles[0]) as file:
            state = _StateDictUnpickler(io.BytesIO(file.read()), path, storages).load()
        for key, storage in storages.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise TorchCheckpointError(f"{path}: the archive has no data for storage {key!r} (damaged?).") from None
            if len(raw) < storage.numel * storage.dtype.itemsize:
                raise TorchCheckpointError(f"{path}: the data of storage {key!r} is shorter than its "
                                           f"{storage.numel} elements (damaged?).")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"), count=storage.numel)
    return _to_arrays(state, path)


def _read_legacy(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as file:
        try:
            magic = _StateDictUnpickler(file, path, {}).load() if _starts_like_a_pickle(file) else None
        except Exception:  # noqa: BLE001 - any failure here means "not this format"
            magic = None
        if magic != LEGACY_MAGIC:
            raise TorchCheckpointError(
                f"{path}: not a PyTorch checkpoint (neither a zip archive nor the legacy format of "
                "torch.save). Pass the .pth file of a state_dict."
            )
        protocol = _StateDictUnpickler(file, path, {}).load()
        if protocol != LEGACY_PROTOCOL:
            raise TorchCheckpointError(f"{path}: legacy checkpoint protocol {protocol!r} is not {LEGACY_PROTOCOL}.")
        _StateDictUnpickler(file, path, {}).load()  # sys_info: byte order and type sizes.
        storages: dict[str, _Storage] = {}
        state = _StateDictUnpickler(file, path, storages).load()
        keys = _StateDictUnpickler(file, path, {}).load()
        for key in keys:
            storage = storages.get(str(key))
            header = file.read(8)
            if storage is None or len(header) != 8:
                raise TorchCheckpointError(f"{path}: the file ends before the data of storage {key!r} (truncated?).")
            (numel,) = struct.unpack("<q", header)
            nbytes = numel * storage.dtype.itemsize
            raw = file.read(nbytes)
            if len(raw) != nbytes:
                raise TorchCheckpointError(f"{path}: the file ends inside the data of storage {key!r} (truncated?).")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _to_arrays(state, path)


def _starts_like_a_pickle(file) -> bool:
    start = file.tell()
    head = file.read(2)
    file.seek(start)
    return len(head) == 2 and head[0] == 0x80  # A pickle protocol 2+ header.


def read_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch ``state_dict`` file, as NumPy arrays, by name.

    Args:
        path: A ``.pth``/``.pt`` file written by ``torch.save(state_dict, path)`` (zip or legacy
            format). A checkpoint dict holding ``"state_dict"`` is unwrapped.

    Returns:
        ``{name: array}`` in the file's order; arrays keep PyTorch's layout (``[out, in, kh, kw]``
        for convolution kernels).

    Raises:
        FileNotFoundError: No such file.
        TorchCheckpointError: Not a checkpoint, truncated, or holding objects other than tensors.

    Example:
        >>> read_torch_state_dict("/no/such/file.pth")
        Traceback (most recent call last):
        FileNotFoundError: No PyTorch checkpoint at '/no/such/file.pth'.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No PyTorch checkpoint at {path!r}.")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path)
