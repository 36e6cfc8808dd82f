"""Reading research pickles (MANO, OHTA, ACR) without running arbitrary code.

Pickles are programs. `load_pickle` admits only numpy arrays and scalars, plain Python containers, scipy sparse
matrices (turned into dense arrays) and chumpy objects (turned into their underlying arrays, so chumpy itself never
has to be importable). Anything else is refused with an error naming the file and the class.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# numpy's pickles name these reconstructors; numpy 2 moved `numpy.core` to `numpy._core`.
_NUMPY_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy", "float64"): np.float64,
    ("numpy", "float32"): np.float32,
    ("numpy", "int64"): np.int64,
    ("numpy", "int32"): np.int32,
    ("numpy", "uint32"): np.uint32,
}
for _name in ("numeric", "multiarray"):
    _NUMPY_ALLOWED[(f"numpy.core.{_name}", "_frombuffer")] = np._core.numeric._frombuffer
    _NUMPY_ALLOWED[(f"numpy._core.{_name}", "_frombuffer")] = np._core.numeric._frombuffer

_BUILTINS_ALLOWED = {"object", "set", "frozenset", "slice", "complex", "bytearray", "range"}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a class outside the allow-list."""


class _Stub:
    """Stand-in for an admitted foreign class (chumpy, scipy.sparse): it only keeps its pickled state."""

    _module = ""
    _qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def __reduce__(self):  # pragma: no cover - never re-pickled
        raise TypeError("stand-in objects cannot be pickled")


def _stub_class(module: str, name: str) -> type:
    return type(name, (_Stub,), {"_module": module, "_qualname": name})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_ALLOWED:
            return _NUMPY_ALLOWED[(module, name)]
        if module in ("builtins", "__builtin__") and name in _BUILTINS_ALLOWED:
            return getattr(__import__("builtins"), name)
        if module == "copyreg" and name == "_reconstructor" or module == "copy_reg" and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor
        if module == "_codecs" and name == "encode":  # protocol-2 pickles store bytes as latin1 text
            import _codecs

            return _codecs.encode
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module.split(".")[0] == "chumpy" or (module.startswith("scipy.sparse") and name.endswith("_matrix")):
            return _stub_class(module, name)
        raise UnsafePickleError(
            f"{self._source}: refusing to unpickle {module}.{name}; only numpy arrays, scipy sparse matrices and "
            "chumpy arrays are allowed in this file"
        )


def _sparse_to_dense(stub: _Stub, source: str) -> np.ndarray:
    state = stub.__dict__.get("_state") or {}
    fmt = stub._qualname.replace("_matrix", "")
    try:
        shape = tuple(int(s) for s in state.get("_shape", state.get("shape")))
        if fmt in ("csc", "csr"):
            import scipy.sparse as sp

            cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
            mat = cls((state["data"], state["indices"], state["indptr"]), shape=shape)
        elif fmt == "coo":
            import scipy.sparse as sp

            mat = sp.coo_matrix((state["data"], (state["row"], state["col"])), shape=shape)
        else:
            raise KeyError(f"format {fmt!r}")
    except (KeyError, TypeError) as err:
        raise pickle.UnpicklingError(f"{source}: malformed scipy sparse matrix ({err})") from err
    return np.asarray(mat.todense())


def _chumpy_to_array(stub: _Stub, source: str) -> np.ndarray:
    state = stub.__dict__.get("_state")
    if isinstance(state, dict) and "x" in state:
        return np.asarray(_convert(state["x"], source))
    if isinstance(state, dict) and "a" in state:  # reordering ops keep their operand in 'a'
        return np.asarray(_convert(state["a"], source))
    raise pickle.UnpicklingError(f"{source}: chumpy object {stub._module}.{stub._qualname} has no stored array 'x'")


def _convert(obj: Any, source: str) -> Any:
    if isinstance(obj, _Stub):
        if obj._module.startswith("scipy.sparse"):
            return _sparse_to_dense(obj, source)
        return _chumpy_to_array(obj, source)
    if isinstance(obj, dict):
        return {k: _convert(v, source) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_convert(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_convert(v, source) for v in obj)
    return obj


def loads_pickle(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle `data` with the allow-list; chumpy and sparse objects become dense numpy arrays."""
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, UnicodeDecodeError) as err:
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(err).__name__}: {err})") from err
    return _convert(obj, source)


def load_pickle(path: str | Path) -> Any:
    """Read a pickle file safely (see module docstring). Raises FileNotFoundError or UnpicklingError naming `path`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return loads_pickle(path.read_bytes(), str(path))
