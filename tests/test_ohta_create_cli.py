"""create.py on the original's sample inputs (../shared/fixtures/ohta): creation, results, refusal to overwrite,
editing a created avatar."""

import json
import pickle

import pytest
import torch

import create
from hands.io.images import ImageReadError
from hands.mano.builtin import builtin_model
from hands.ohta.checkpoint import load_avatar
from tests.conftest import fixture_path

FAST = ["size=40", "creation.views=2", "creation.inversion_steps=3", "creation.finetune_steps=2", "creation.edit_steps=2"]


def test_create_then_edit_on_the_sample_inputs(tmp_path):
    wild = fixture_path("ohta", "in_the_wild", "img", "02023.jpg")
    out = create.main(["--input", str(wild), "--no_prior", "--out", str(tmp_path), "--quiet", *FAST])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["avatar", "config.yaml", "final_0.png", "final_1.png", "history.json", "input.png", "reference_0.png",
                     "reference_1.png"]
    history = json.loads((out / "history.json").read_text())
    assert len(history["inversion"]) == 3 and len(history["finetune"]) == 2 * 2
    avatar = load_avatar(out / "avatar", builtin_model("right"))
    assert float(avatar.appearance.id_feature.detach().abs().sum()) > 0  # the inversion moved the identity
    with pytest.raises(FileExistsError):
        create.main(["--input", str(wild), "--no_prior", "--out", str(tmp_path), "--quiet", *FAST])

    rainbow = fixture_path("ohta", "editing", "img", "rainbow.jpg")
    edited = create.main(["--input", str(rainbow), "--checkpoint", str(out / "avatar"), "--edit", "--out",
                          str(tmp_path / "edits"), "--quiet", *FAST])
    after = load_avatar(edited / "avatar", builtin_model("right"))
    # editing tunes the albedo networks only: identity and calibration stay the created avatar's
    torch.testing.assert_close(after.appearance.id_feature, avatar.appearance.id_feature)
    assert not torch.equal(after.appearance.dict_fusion[0].weight, avatar.appearance.dict_fusion[0].weight)


def test_bad_inputs_name_the_file(tmp_path):
    wild = fixture_path("ohta", "in_the_wild", "img", "02023.jpg")
    root = tmp_path / "input"
    for folder in ("img", "mask", "anno"):
        (root / folder).mkdir(parents=True)
    (root / "img" / "a.jpg").write_bytes(wild.read_bytes())
    with pytest.raises(ImageReadError, match="mask/a.png"):
        create.main(["--input", str(root / "img" / "a.jpg"), "--no_prior", "--out", str(tmp_path / "o"), *FAST])
    (root / "mask" / "a.png").write_bytes((wild.parent.parent / "mask" / "02023.png").read_bytes())
    (root / "anno" / "a.pkl").write_bytes(b"not a pickle")
    with pytest.raises(pickle.UnpicklingError, match="a.pkl"):
        create.main(["--input", str(root / "img" / "a.jpg"), "--no_prior", "--out", str(tmp_path / "o"), *FAST])


def test_text_to_avatar_with_a_tiny_attentionhand(tiny_sd, tmp_path):
    _, folder, _ = tiny_sd
    out = create.main(["--text", "a hand with blue nails", "--attentionhand", str(folder), "--no_prior", "--out",
                       str(tmp_path), "--quiet", *FAST, "text_input.sampling.image_size=64", "text_input.sampling.steps=2"])
    assert out.name == "text_a_hand_with_blue_nails"
    generated = out / "text_input"
    # the generated input is a complete one-shot input: it reads back and can be created from again
    from hands.ohta.inputs import read_oneshot_input

    again = read_oneshot_input(generated / "img" / f"{out.name}.png")
    assert again.image.shape == (40, 40, 3) and again.mask.sum() > 20
    saved = json.loads((out / "history.json").read_text())
    assert len(saved["finetune"]) == 2 * 2
