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
