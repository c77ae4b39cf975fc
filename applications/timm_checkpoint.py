"""Read timm checkpoint files into NumPy arrays, by tensor name.

`.safetensors` (the format timm publishes on the Hugging Face Hub) is read with NumPy alone, no
PyTorch needed; `.pth` / `.pt` / `.bin` files (PyTorch pickles) are read with
`torch.load(weights_only=True)` when PyTorch is installed. `timm_convert` maps the tensors onto
a keras-se model.

Example:
>>> tensors = read_checkpoint("seresnet50.safetensors")  # doctest: +SKIP
>>> tensors["fc.weight"].shape  # doctest: +SKIP
(1000, 2048)
"""

import json
import os
import pathlib
import struct

import numpy as np

SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
PICKLE_SUFFIXES = (".pth", ".pt", ".bin")


def _bfloat16_to_float32(raw):
    """bfloat16 is the top half of a float32: shift the 16 bits into place."""
    return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path):
    """Read a `.safetensors` file into `{name: float32 or integer numpy array}`.

    The format is an 8-byte little-endian header length, a JSON header (dtype, shape and byte
    range of every tensor) and the tensor bytes. A file cut short fails naming the first tensor
    whose bytes are missing.

    Example:
    >>> import tempfile, pathlib
    >>> header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.safetensors"
    >>> _ = path.write_bytes(struct.pack("<Q", len(header)) + header.encode()
    ...                      + np.array([1, 2], "<f4").tobytes())
    >>> read_safetensors(path)["w"]
    array([1., 2.], dtype=float32)
    """
    path = pathlib.Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"Checkpoint {str(path)!r} is not a safetensors file: it is too short.")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > len(data) - 8:
        raise ValueError(
            f"Checkpoint {str(path)!r} is not a complete safetensors file: its header claims "
            f"{header_size} bytes but the file has {len(data)}."
        )
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Checkpoint {str(path)!r} has no valid safetensors header.") from error
    header.pop("__metadata__", None)
    body = memoryview(data)[8 + header_size :]
    tensors = {}
    for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        begin, end = info["data_offsets"]
        if end > len(body):
            raise ValueError(
                f"Checkpoint {str(path)!r} is truncated: tensor {name!r} needs bytes {begin} to "
                f"{end} of the data but the file holds {len(body)}."
            )
        raw = body[begin:end]
        if info["dtype"] == "BF16":
            array = _bfloat16_to_float32(raw)
        elif info["dtype"] in SAFETENSORS_DTYPES:
            array = np.frombuffer(
                raw, np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
            )
        else:
            raise ValueError(
                f"Checkpoint {str(path)!r}: tensor {name!r} has dtype {info['dtype']!r}, which "
                f"keras-se does not read ({', '.join(['BF16', *SAFETENSORS_DTYPES])})."
            )
        tensors[name] = array.reshape(info["shape"])
    return tensors


def _read_pickle(path):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading {str(path)!r} needs PyTorch (a .pth file is a pickle of torch tensors). "
            "Install it (pip install torch), or convert the checkpoint to .safetensors where "
            "PyTorch is installed, or download the model.safetensors timm publishes on the "
            "Hugging Face Hub."
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"Checkpoint {str(path)!r} cannot be read by PyTorch: {error}") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(
            f"Checkpoint {str(path)!r} holds a {type(state).__name__}, not a state dict."
        )
    return {
        name: value.detach().float().numpy() if value.is_floating_point() else value.numpy()
        for name, value in state.items()
        if isinstance(value, torch.Tensor)
    }


def read_checkpoint(path):
    """Read a timm checkpoint (`.safetensors`, or `.pth`/`.pt`/`.bin` with PyTorch) to NumPy.

    Example:
    >>> read_checkpoint("model.npz")
    Traceback (most recent call last):
    ...
    ValueError: Checkpoint 'model.npz' must be a .safetensors file or a PyTorch ...
    """
    path = os.fspath(path)
    if not path.endswith((".safetensors", *PICKLE_SUFFIXES)):
        raise ValueError(
            f"Checkpoint {path!r} must be a .safetensors file or a PyTorch "
            f"{'/'.join(PICKLE_SUFFIXES)} file."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
    return read_safetensors(path) if path.endswith(".safetensors") else _read_pickle(path)
