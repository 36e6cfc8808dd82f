"""Reading MANO files without chumpy, refusing unsafe pickles, and clear errors for broken files."""

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from hands.io.safe_pickle import UnsafePickleError, load_pickle
from hands.mano import ManoFileError, build_mano, load_mano_file, load_mano_model, save_mano_file
from hands.mano.builtin import builtin_model
from hands.mano.model_file import model_to_dict


def _write_chumpy_style_pickle(path, arrays: dict) -> None:
    """Pickle like the official files: chumpy `Ch` objects (holding the array in 'x') and a scipy csc regressor.

    A throw-away `chumpy.ch` module is registered only while pickling, so the reader never has chumpy available.
    """
    chumpy = types.ModuleType("chumpy")
    ch_module = types.ModuleType("chumpy.ch")

    class Ch:  # the real class pickles its state dict, with the value under 'x'
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch_module.Ch = Ch
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": ch_module})
    try:
        data = dict(arrays)
        for key in ("shapedirs", "posedirs", "v_template", "weights", "J"):
            data[key] = Ch(np.asarray(arrays[key]))
        data["J_regressor"] = sp.csc_matrix(arrays["J_regressor"])
        data["bs_style"], data["bs_type"] = "lbs", "lrotmin"
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def test_official_style_pickle_loads_without_chumpy(tmp_path):
    assert "chumpy" not in sys.modules
    reference = builtin_model("right")
    path = tmp_path / "MANO_RIGHT.pkl"
    _write_chumpy_style_pickle(path, model_to_dict(reference))
    assert b"chumpy.ch" in path.read_bytes() and b"csc_matrix" in path.read_bytes()
    loaded = load_mano_file(path)
    assert loaded.side == "right"
    np.testing.assert_array_equal(loaded.shapedirs, reference.shapedirs)
    np.testing.assert_allclose(loaded.J_regressor, reference.J_regressor, atol=0)
    np.testing.assert_array_equal(loaded.faces, reference.faces)
    assert "chumpy" not in sys.modules


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_save_load_round_trip(tmp_path, suffix):
    model = builtin_model("left")
    path = save_mano_file(model, tmp_path / f"MANO_LEFT{suffix}")
    loaded = load_mano_file(path)
    assert loaded.side == "left" and loaded.is_builtin
    for key in ("v_template", "shapedirs", "weights", "J_regressor", "hands_components", "hands_mean"):
        np.testing.assert_allclose(getattr(loaded, key), getattr(model, key), atol=1e-15)
    with pytest.raises(FileExistsError, match="--overwrite"):
        save_mano_file(model, path)


def test_missing_key_is_named(tmp_path):
    data = model_to_dict(builtin_model("right"))
    del data["weights"]
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ManoFileError, match=r"MANO_RIGHT.pkl: missing key 'weights'"):
        load_mano_file(path)


def test_wrong_shape_is_named(tmp_path):
    data = model_to_dict(builtin_model("right"))
    data["posedirs"] = data["posedirs"][:, :, :100]
    path = tmp_path / "MANO_RIGHT.npz"
    np.savez(path, **data)
    with pytest.raises(ManoFileError, match=r"'posedirs' has shape \(778, 3, 100\)"):
        load_mano_file(path)


def test_nan_values_and_the_odd_shape_out_are_named(tmp_path):
    data = model_to_dict(builtin_model("right"))
    data["shapedirs"] = data["shapedirs"].copy()
    data["shapedirs"][5, 1, 2] = np.nan
    np.savez(tmp_path / "MANO_RIGHT.npz", **data)
    with pytest.raises(ManoFileError, match=r"MANO_RIGHT.npz: key 'shapedirs' holds NaN"):
        load_mano_file(tmp_path / "MANO_RIGHT.npz")
    data = model_to_dict(builtin_model("right"))
    data["v_template"] = data["v_template"][:10]  # the template is wrong, not the shape directions
    np.savez(tmp_path / "MANO_LEFT.npz", **data)
    with pytest.raises(ManoFileError, match=r"key 'v_template' has shape \(10, 3\)"):
        load_mano_file(tmp_path / "MANO_LEFT.npz")


def test_truncated_file(tmp_path):
    good = save_mano_file(builtin_model("right"), tmp_path / "good" / "MANO_RIGHT.pkl")
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ManoFileError, match="MANO_RIGHT.pkl: not a readable pickle"):
        load_mano_file(bad)


def test_code_in_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}))
    with pytest.raises(UnsafePickleError, match="refusing to unpickle"):
        load_pickle(path)
    with pytest.raises(ManoFileError, match="refusing"):
        load_mano_file(path)


def test_missing_file_says_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MANO_RIGHT.pkl.*HANDS_HOME/mano"):
        build_mano("right", tmp_path / "nowhere" / "MANO_RIGHT.pkl", pose_convention="flat")
    with pytest.raises(FileNotFoundError, match="no MANO_LEFT.pkl in this folder"):
        build_mano("left", tmp_path, pose_convention="flat")


def test_side_must_be_known(tmp_path):
    path = save_mano_file(builtin_model("right"), tmp_path / "hand.npz")
    with pytest.raises(ManoFileError, match="hand side"):
        load_mano_file(path)
    assert load_mano_file(path, side="right").side == "right"


def test_builtin_fallback_warns_once_per_call(monkeypatch, tmp_path):
    import warnings

    from hands.mano import BuiltinHandWarning

    monkeypatch.delenv("HANDS_MANO_DIR", raising=False)
    monkeypatch.setenv("HANDS_HOME", str(tmp_path))  # no mano/ there, and the checkout has no models/mano in CI
    monkeypatch.setattr("hands.mano.model_file.DEFAULT_MANO_DIR", tmp_path / "models" / "mano")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_mano_model("right")
    assert model.is_builtin
    assert [w.category for w in caught] == [BuiltinHandWarning]
    assert len(str(caught[0].message).splitlines()) == 1


def test_configured_folder_is_used(monkeypatch, mano_dir):
    monkeypatch.setenv("HANDS_MANO_DIR", str(mano_dir))
    model = load_mano_model("left")
    assert model.source == str(mano_dir / "MANO_LEFT.pkl")


def test_ohta_fixture_pickle_reads_safely():
    from conftest import fixture_path

    camera, params, bbox, kind = load_pickle(fixture_path("ohta", "editing", "anno", "rainbow.pkl"))
    assert params["poses"].shape == (48,) and params["tpose_joints"].shape == (21, 3)
    assert camera["intrinsics"].shape == (3, 3) and kind == "rgb" and bbox.shape == (4,)
