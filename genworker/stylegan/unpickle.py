"""Reading NVIDIA's StyleGAN network pickles as data, without executing them.

NVIDIA's training code pickles its networks as ``torch_utils.persistence`` objects: a call
of ``_reconstruct_persistent_obj(meta)`` whose ``meta`` carries the class name, the source
text of the module that defines it and the module's ``__dict__`` (parameters, buffers,
sub-modules, init kwargs). The ordinary ``pickle.load`` would import NVIDIA's code or run
that source text. :class:`NetworkUnpickler` instead resolves only the globals needed to
rebuild tensors, numpy arrays and ordered dicts, turns the persistence call into a
:class:`PersistentObject` (plain data; the source text is dropped unread) and refuses
every other global with :class:`RefusedGlobal`, naming it.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:  # numpy 2
    from numpy._core.multiarray import scalar as _scalar
except ImportError:  # numpy 1
    from numpy.core.multiarray import scalar as _scalar


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global that reading a network does not need."""


@dataclass
class PersistentObject:
    """One pickled ``torch_utils.persistence`` object, as data."""

    class_name: str
    state: dict[str, Any] = field(repr=False)  # the module's __dict__

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def parameters(self) -> dict[str, torch.Tensor | None]:
        return dict(self.state.get("_parameters") or {})

    @property
    def buffers(self) -> dict[str, torch.Tensor | None]:
        return dict(self.state.get("_buffers") or {})

    @property
    def modules(self) -> dict[str, PersistentObject]:
        return dict(self.state.get("_modules") or {})

    def child(self, name: str) -> PersistentObject:
        module = self.modules.get(name)
        if not isinstance(module, PersistentObject):
            raise ValueError(f"{self.class_name} has no sub-network {name!r}")
        return module

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every parameter and buffer of this module and its sub-modules, by dotted name."""
        found = {
            prefix + name: value
            for name, value in {**self.parameters, **self.buffers}.items()
            if value is not None
        }
        for name, module in self.modules.items():
            if isinstance(module, PersistentObject):
                found.update(module.tensors(f"{prefix}{name}."))
        return found


def _persistent_object(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("a persistence record that is not a class instance")
    if not isinstance(meta.get("class_name"), str) or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("a persistence record without class_name and state")
    return PersistentObject(meta["class_name"], meta["state"])


def _storage_from_bytes(data: bytes) -> torch.UntypedStorage:
    """A storage that NVIDIA's code pickled through ``torch.save``: read with torch's own
    restricted loader, never the unrestricted one ``torch.storage._load_from_bytes`` uses."""
    return torch.load(io.BytesIO(data), weights_only=True)


def _plain_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise RefusedGlobal("numpy object arrays are refused: they can hold any object")
    return dtype


def _numpy_scalar(dtype: np.dtype, *args: Any) -> np.generic:
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise RefusedGlobal("numpy object scalars are refused: they can hold any object")
    return _scalar(dtype, *args)


def _numpy_array(subtype: type, shape: Any, dtype: Any) -> np.ndarray:
    """numpy pickles an array as an empty one that its state then fills: nothing else (no
    subclass, no other shape, which could ask for any amount of memory) is accepted."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise RefusedGlobal(f"a numpy array of {subtype!r}, shape {shape!r} is refused")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "dtype"): _plain_dtype,
    ("numpy", "ndarray"): np.ndarray,
    **{(module, "scalar"): _numpy_scalar for module in _MULTIARRAY},
    **{(module, "_reconstruct"): _numpy_array for module in _MULTIARRAY},
}


class NetworkUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED`; any other global is refused, by name."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"the pickle asks for {module}.{name}, which reading a network does not need; "
                "refused (nothing from the file was run)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not part of a network pickle")


def read_network_pickle(path: str | Path) -> dict[str, Any]:
    """The snapshot dict of an NVIDIA network pickle (``G``, ``D``, ``G_ema``, ...), its
    networks as :class:`PersistentObject`."""
    with open(path, "rb") as file:
        try:
            data = NetworkUnpickler(file).load()
        except RefusedGlobal:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise pickle.UnpicklingError(
                f"{Path(path).name} is not a readable pickle: {error}"
            ) from error
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name} holds a {type(data).__name__}, not a snapshot dict")
    return data
