"""A pickled network as a plain, JSON-able description, and the base of the modules built
from one.

The description of a module is its class name in NVIDIA's code, its scalar attributes
(resolution, up factor, padding, gains, clamps, ...: NVIDIA's code stores every derived
number on the module, so nothing has to be re-derived), the shape of each parameter and
buffer, and its sub-modules described the same way. Gantry's own modules
(:mod:`genworker.stylegan.stylegan2`, :mod:`genworker.stylegan.stylegan3`) are built from
the description and take the converted tensors by the same dotted names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from genworker.stylegan.unpickle import PersistentObject

SKIPPED_ATTRIBUTES = {"training"}


def plain(value: Any) -> Any:
    """numpy scalars and arrays, tuples and dicts of them, as JSON values."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"an attribute of type {type(value).__name__} is not plain data")


def describe(obj: PersistentObject) -> dict:
    """The description of ``obj`` and its sub-modules (see the module docstring)."""
    attributes = {}
    for name, value in obj.state.items():
        if name.startswith("_") or name in SKIPPED_ATTRIBUTES:
            continue
        try:
            attributes[name] = plain(value)
        except ValueError as error:
            raise ValueError(f"{obj.class_name}.{name}: {error}") from None
    return {
        "class": obj.class_name,
        "attributes": attributes,
        "init_kwargs": plain(obj.init_kwargs),
        "parameters": {k: list(v.shape) for k, v in obj.parameters.items() if v is not None},
        "buffers": {k: list(v.shape) for k, v in obj.buffers.items() if v is not None},
        "modules": {
            name: describe(module)
            for name, module in obj.modules.items()
            if isinstance(module, PersistentObject)
        },
    }


class Described(nn.Module):
    """A module whose parameters and buffers (zeros until the weights load) and attributes
    come from a description; subclasses build their sub-modules and the forward pass."""

    nvidia_class: str = ""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        if spec["class"] != self.nvidia_class:
            raise ValueError(f"expected a {self.nvidia_class}, got a {spec['class']}")
        self.spec = spec
        for name, shape in spec["parameters"].items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape), requires_grad=False))
        for name, shape in spec["buffers"].items():
            self.register_buffer(name, torch.zeros(shape))

    def attribute(self, name: str) -> Any:
        try:
            return self.spec["attributes"][name]
        except KeyError:
            raise ValueError(f"{self.nvidia_class} description lacks {name!r}") from None

    def child_spec(self, name: str) -> dict:
        try:
            return self.spec["modules"][name]
        except KeyError:
            raise ValueError(f"{self.nvidia_class} lacks sub-network {name!r}") from None
