"""MANO model files: the official `MANO_RIGHT.pkl`/`MANO_LEFT.pkl` (read without chumpy), smplx-style `.npz`,
and the built-in open hand model, all loaded into one `ManoModelData`.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hands.io.atomic import atomic_path
from hands.io.home import PACKAGE_ROOT, home_file
from hands.io.safe_pickle import load_pickle
from hands.prediction.types import SIDES, Side  # noqa: F401  (re-exported: the sides of every MANO file)

#: Where official MANO files are looked for when no path is given: $HANDS_MANO_DIR when set (then it must hold
#: them), else $HANDS_HOME/mano, else the checkout's models/mano (never relative to the working folder).
DEFAULT_MANO_DIR = PACKAGE_ROOT / "models" / "mano"
MANO_DOWNLOAD_HINT = (
    "MANO is licensed and cannot be shipped: register at https://mano.is.tue.mpg.de, download 'Models & Code', "
    "and put MANO_RIGHT.pkl and MANO_LEFT.pkl in $HANDS_HOME/mano/ (or set $HANDS_MANO_DIR); leave the path empty to "
    "use the built-in open hand model instead"
)

# key -> expected shape, with V (vertices), F (faces) free; None = any.
_REQUIRED_KEYS: dict[str, tuple] = {
    "v_template": ("V", 3),
    "f": ("F", 3),
    "shapedirs": ("V", 3, None),
    "posedirs": ("V", 3, 135),
    "J_regressor": (16, "V"),
    "weights": ("V", 16),
    "kintree_table": (2, 16),
    "hands_components": (None, 45),
    "hands_mean": (45,),
}


class ManoFileError(ValueError):
    """A MANO model file is missing a key or has an array of the wrong shape."""


@dataclass(frozen=True)
class ManoModelData:
    """Arrays of a MANO-format hand model (float64 numpy, meters).

    v_template (V,3); faces (F,3) int64, outward-facing for this side; shapedirs (V,3,S); posedirs (V,3,135);
    J_regressor (16,V) dense; weights (V,16) skinning weights; parents (16,) with parents[0] == -1;
    hands_components (C,45) PCA basis rows; hands_mean (45,) mean pose (axis-angle).
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    hands_components: np.ndarray
    hands_mean: np.ndarray
    side: Side
    source: str = "<memory>"
    is_builtin: bool = False
    extras: dict = field(default_factory=dict, compare=False)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def with_left_shapedirs_fix(self) -> "ManoModelData":
        """Negate the x-component of the shape directions (the official left model's known mirroring bug)."""
        fixed = self.shapedirs.copy()
        fixed[:, 0, :] *= -1
        return replace(self, shapedirs=fixed)


def _check_shape(name: str, arr: np.ndarray, spec: tuple, dims: dict[str, int], source: str) -> None:
    if arr.ndim != len(spec):
        raise ManoFileError(f"{source}: key '{name}' should have {len(spec)} dimensions, got shape {arr.shape}")
    for axis, (want, got) in enumerate(zip(spec, arr.shape)):
        if want is None:
            continue
        if isinstance(want, str):
            if dims.get(want) is None:
                dims[want] = got
            want = dims[want]
        if want != got:
            raise ManoFileError(f"{source}: key '{name}' has shape {arr.shape}; axis {axis} should be {want}")


def _vertex_count(raw: dict) -> int | None:
    """The vertex count most of the V-sized arrays agree on, so that the odd one out is the one blamed."""
    counts = []
    for key, spec in _REQUIRED_KEYS.items():
        array = raw.get(key)
        shape = getattr(array, "shape", None)
        if shape is not None and "V" in spec and len(shape) == len(spec):
            counts.append(int(shape[spec.index("V")]))
    return max(set(counts), key=counts.count) if counts else None


def model_from_dict(raw: dict, side: Side, source: str, is_builtin: bool = False) -> ManoModelData:
    """Validate a dict of MANO arrays (as stored in .pkl/.npz files) and build `ManoModelData`."""
    if not isinstance(raw, dict):
        raise ManoFileError(f"{source}: expected a dict of MANO arrays, got {type(raw).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise ManoFileError(f"{source}: missing key '{missing[0]}' (a MANO file needs {', '.join(_REQUIRED_KEYS)})")
    arrays: dict[str, np.ndarray] = {}
    dims: dict[str, int] = {"V": _vertex_count(raw)}
    for key, spec in _REQUIRED_KEYS.items():
        try:
            arrays[key] = np.asarray(raw[key])
        except Exception as err:  # noqa: BLE001 - report any conversion failure against its key
            raise ManoFileError(f"{source}: key '{key}' is not an array ({err})") from err
        if arrays[key].dtype == object:
            raise ManoFileError(f"{source}: key '{key}' is not a numeric array")
        _check_shape(key, arrays[key], spec, dims, source)
        if arrays[key].dtype.kind in "fc" and not np.isfinite(arrays[key]).all():
            raise ManoFileError(f"{source}: key '{key}' holds NaN or infinite values")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, 16)):
        raise ManoFileError(f"{source}: key 'kintree_table' does not describe a tree ordered parent-first")
    faces = arrays["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= dims["V"]:
        raise ManoFileError(f"{source}: key 'f' indexes vertices outside 0..{dims['V'] - 1}")
    f64 = {k: arrays[k].astype(np.float64) for k in _REQUIRED_KEYS if k not in ("f", "kintree_table")}
    return ManoModelData(
        v_template=f64["v_template"], faces=faces, shapedirs=f64["shapedirs"], posedirs=f64["posedirs"],
        J_regressor=f64["J_regressor"], weights=f64["weights"], parents=parents,
        hands_components=f64["hands_components"], hands_mean=f64["hands_mean"].reshape(45),
        side=side, source=source, is_builtin=is_builtin,
    )


def side_from_filename(path: str | Path) -> Side | None:
    """'right'/'left' from a name like MANO_RIGHT.pkl, or None when the name does not say."""
    name = Path(path).name.upper()
    if "RIGHT" in name:
        return "right"
    if "LEFT" in name:
        return "left"
    return None


def load_mano_file(path: str | Path, side: Side | None = None) -> ManoModelData:
    """Read an official MANO `.pkl` (chumpy/scipy objects allowed, chumpy not needed) or a smplx-style `.npz`.

    `side` defaults to what the file name says (RIGHT/LEFT). Errors name the file and the offending key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MANO model file not found: {path}. {MANO_DOWNLOAD_HINT}")
    side = side or side_from_filename(path)
    if side not in ("right", "left"):
        raise ManoFileError(f"{path}: cannot tell the hand side from the file name; pass side='right' or 'left'")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                raw = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, EOFError) as err:
            raise ManoFileError(f"{path}: not a readable .npz file ({err})") from err
        is_builtin = bool(raw.get("is_builtin", False))
    else:
        try:
            raw = load_pickle(path)
        except pickle.UnpicklingError as err:
            raise ManoFileError(str(err)) from err
        is_builtin = bool(raw.get("is_builtin", False)) if isinstance(raw, dict) else False
    return model_from_dict(raw, side, str(path), is_builtin=is_builtin)


def model_to_dict(model: ManoModelData) -> dict[str, np.ndarray]:
    """The arrays of `model` under the official MANO key names (dense J_regressor)."""
    kintree = np.stack([model.parents, np.arange(16)]).astype(np.int64)
    kintree[0, 0] = -1
    return {
        "v_template": model.v_template, "f": model.faces.astype(np.uint32), "shapedirs": model.shapedirs,
        "posedirs": model.posedirs, "J_regressor": model.J_regressor, "weights": model.weights,
        "kintree_table": kintree, "hands_components": model.hands_components, "hands_mean": model.hands_mean,
        "J": model.J_regressor @ model.v_template,
    }


def save_mano_file(model: ManoModelData, path: str | Path, overwrite: bool = False) -> Path:
    """Write `model` as a MANO `.pkl` (sparse J_regressor, plain numpy, readable by smplx) or `.npz` (atomic)."""
    path = Path(path)
    data = model_to_dict(model)
    data["is_builtin"] = np.asarray(model.is_builtin)
    with atomic_path(path, overwrite) as tmp:
        if path.suffix == ".npz":
            np.savez_compressed(tmp, **data)
        else:
            import scipy.sparse as sp

            data["J_regressor"] = sp.csc_matrix(data["J_regressor"])
            data["bs_style"], data["bs_type"] = "lbs", "lrotmin"
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh, protocol=2)
    return path


def resolve_model_path(side: Side, model_path: str | Path | None) -> Path | None:
    """The official file to use for `side`: `model_path` (a file or a folder), else $HANDS_MANO_DIR (which must then hold
    it), $HANDS_HOME/mano or the checkout's models/mano.

    Returns None when no path was given and no official file is present (the caller then uses the built-in model);
    raises FileNotFoundError when a given path does not hold the file.
    """
    filename = f"MANO_{side.upper()}.pkl"
    if model_path:
        path = Path(model_path)
        if path.is_dir():
            for candidate in (path / filename, path / "mano" / filename, path / filename.replace(".pkl", ".npz")):
                if candidate.is_file():
                    return candidate
            raise FileNotFoundError(f"{path}: no {filename} in this folder. {MANO_DOWNLOAD_HINT}")
        if not path.is_file():
            raise FileNotFoundError(f"MANO model file not found: {path}. {MANO_DOWNLOAD_HINT}")
        return path
    if os.environ.get("HANDS_MANO_DIR"):
        folder = Path(os.environ["HANDS_MANO_DIR"])
        if not (folder / filename).is_file():
            raise FileNotFoundError(f"$HANDS_MANO_DIR={folder} holds no {filename}. {MANO_DOWNLOAD_HINT}")
        return folder / filename
    return next((folder / filename for folder in (home_file("mano"), DEFAULT_MANO_DIR) if (folder / filename).is_file()), None)
