"""`make demo`'s script: renders every pose into its folder with its config, and never overwrites by accident."""

import cv2
import pytest

import demo


def test_demo_writes_images_and_config(tmp_path):
    out = demo.main(["--out", str(tmp_path / "demo"), "--size", "96", "--device", "cpu"])
    names = set(demo.demo_poses())
    assert {"rest", "fist", "point", "spread"} <= names
    for name in names:
        image = cv2.imread(str(out / f"{name}.png"))
        assert image.shape == (96, 96, 3)
        hand = (image.max(axis=2) > 20).mean()
        assert 0.05 < hand < 0.8, name  # the hand is drawn and framed
    assert (out / "config.yaml").read_text().count("size: 96") == 1
    rest, fist = cv2.imread(str(out / "rest.png")), cv2.imread(str(out / "fist.png"))
    assert (rest != fist).any()
    before = (out / "rest.png").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        demo.main(["--output", str(out), "--size", "64", "--device", "cpu"])
    assert (out / "rest.png").read_bytes() == before


@pytest.mark.parametrize("source", ["synthetic", "fixtures"])
def test_showcase_reconstructs_hands_on_inputs_it_makes(source, tmp_path):
    """`make demo`: the fit front end on synthetic two-hand renders or the fixture photos."""
    import json

    import trimesh

    from hands.cli.showcase import main as showcase
    from tests.conftest import fixture_path
    from tests.test_fit import landmarker_path

    landmarker_path()
    argv = ["--out", str(tmp_path / "demo")]
    if source == "synthetic":
        argv.append("--synthetic")
    else:
        argv += ["--fixtures", str(fixture_path("acr", "magic.jpg").parents[1])]
    out = showcase(argv)
    summary = json.loads((out / "hands" / "summary.json").read_text())
    counts = [len(frame["hands"]) for frame in summary["frames"]]
    assert counts == ([2, 2] if source == "synthetic" else [1, 1])
    glbs = sorted((out / "hands").glob("*.glb"))
    assert len(glbs) == sum(counts)
    for path in glbs:
        assert len(trimesh.load(path, force="mesh").vertices) == 778
    assert cv2.imread(str(out / "contact_sheet.jpg")).shape[0] > 100
    assert (out / "hands" / "config.yaml").is_file()
    before = (out / "contact_sheet.jpg").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        showcase(argv)
    assert (out / "contact_sheet.jpg").read_bytes() == before
