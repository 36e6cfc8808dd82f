"""scripts/prepare_ohta.py and scripts/prepare_modalities.py on real photos, chained into create.py and inference.py."""

import cv2
import numpy as np
import pytest

import create
from hands.attentionhand.data import read_modalities, read_prompt
from hands.data.crops import CropParams
from hands.mano.joints import convert_joints
from hands.ohta.inputs import read_oneshot_input
from hands.ohta.oneshot import GT_ORDER_FROM_MANO, read_oneshot_annotation
from inference import main as inference
from scripts.prepare_modalities import main as prepare_modalities
from scripts.prepare_ohta import main as prepare_ohta
from tests.conftest import fixture_path
from tests.test_fit import landmarker_path, pck


def precision_recall(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    overlap = float((ours & reference).sum())
    return overlap / max(ours.sum(), 1), overlap / max(reference.sum(), 1)


def photo_crop(annotation) -> CropParams:
    """The square crop an annotation's bbox2d [x, y, side, side] describes (256² output)."""
    x, y, side, _ = annotation.bbox2d
    return CropParams(centre=np.array([x + side / 2, y + side / 2]), width=side, rotation=0.0, out_size=(256, 256))


def mask_in_photo(mask: np.ndarray, crop: CropParams) -> np.ndarray:
    back = cv2.warpAffine(mask.astype(np.uint8), crop.affine(), (256, 256), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST)
    return back > 0


def test_prepare_ohta_matches_the_annotated_input_and_feeds_create(tmp_path):
    landmarker = landmarker_path()
    root = fixture_path("ohta", "in_the_wild")
    photo, magic = root / "img" / "02023.jpg", fixture_path("acr", "magic.jpg")
    written = prepare_ohta([str(photo), str(magic), "--out", str(tmp_path / "inputs"), "--landmarker", str(landmarker),
                            "--device", "cpu"])
    assert [p.name for p in written] == ["02023.png", "magic.png"]
    given = read_oneshot_input(written[0])
    assert given.image.shape == (256, 256, 3) and given.mask.shape == (256, 256)
    # Back in the photo's pixels, the rendered mask and the joints agree with the original's own annotation.
    ours = read_oneshot_annotation(tmp_path / "inputs" / "anno" / "02023.pkl")
    crop = photo_crop(ours)
    reference = cv2.imread(str(root / "mask" / "02023.png"), cv2.IMREAD_GRAYSCALE) > 127
    # The original's mask (SAM) also covers the forearm and a patch of the face; the fitted hand ends at the wrist.
    precision, recall = precision_recall(mask_in_photo(given.mask, crop), reference)
    assert precision > 0.9 and recall > 0.65
    [guided] = prepare_ohta([str(photo), "--masks", str(root / "mask"), "--out", str(tmp_path / "guided"),
                             "--landmarker", str(landmarker), "--device", "cpu"])
    guided_crop = photo_crop(read_oneshot_annotation(tmp_path / "guided" / "anno" / "02023.pkl"))
    guided_precision, _ = precision_recall(mask_in_photo(read_oneshot_input(guided).mask, guided_crop), reference)
    assert guided_precision > max(precision, 0.97)  # the silhouette term pulls the hand onto the mask
    labels = read_oneshot_annotation(root / "anno" / "02023.pkl").joint_img[:, :2]
    # Ours are in OHTA's InterHand2.6M joint order, the wild annotation's in the canonical (OpenPose) order.
    canonical = convert_joints(ours.joint_img[np.argsort(GT_ORDER_FROM_MANO), :2], "mano", "canonical")
    joints = (canonical - crop.affine()[:, 2]) / crop.scale  # crop -> photo pixels (no rotation)
    assert pck(joints, labels, 0.1) >= 0.95
    mirrored = read_oneshot_annotation(tmp_path / "inputs" / "anno" / "magic.pkl")  # a left hand, as its mirror image
    assert mirrored.poses.shape == (48,) and read_oneshot_input(written[1]).mask.sum() > 2000

    out = create.main(["--input", str(written[0]), "--no_prior", "--out", str(tmp_path / "avatars"), "--quiet", "size=40",
                       "creation.views=2", "creation.inversion_steps=2", "creation.finetune_steps=1"])
    assert (out / "avatar" / "avatar.safetensors").is_file()
    with pytest.raises(SystemExit):  # refuses to replace the inputs it wrote
        prepare_ohta([str(photo), "--out", str(tmp_path / "inputs"), "--landmarker", str(landmarker)])


def test_prepare_modalities_feeds_inference_and_rejects_a_photo_without_hands(tiny_sd, tmp_path):
    landmarker = landmarker_path()
    photo = fixture_path("ohta", "in_the_wild", "img", "02023.jpg")
    manifest = prepare_modalities([str(photo), "--out", str(tmp_path / "samples"), "--landmarker", str(landmarker),
                                   "--size", "128", "--device", "cpu"])
    [entry] = read_modalities(manifest)
    mesh = cv2.imread(str(entry.mesh))
    assert mesh.shape == (128, 128, 3) and cv2.imread(str(entry.rgb)).shape == (128, 128, 3)
    x, y, w, h = entry.bbox
    assert (mesh[y:y + h, x:x + w].max(-1) > 40).mean() > 0.3 and 40 < w < 128  # the hand is drawn inside its box
    assert read_prompt(entry.text) == "A photo of a person's right hand with the fingers open."
    _, _, ckpt = tiny_sd
    out = inference(["--sample_path", str(manifest), "--weights", str(ckpt), "--out", str(tmp_path / "generated"),
                     "--steps", "2", "--num_samples", "1", "--image_size", "64", "--architecture", "tiny"])
    assert (out / "02023_0.png").is_file()
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    with pytest.raises(SystemExit, match="2"):
        prepare_modalities([str(blank), "--out", str(tmp_path / "none"), "--landmarker", str(landmarker)])
    assert not (tmp_path / "none" / "modalities.json").exists()


def test_eval_fit_reports_pck_on_labelled_photos(tmp_path):
    from scripts.eval_fit import main as eval_fit

    landmarker = landmarker_path()
    root = fixture_path("ohta", "in_the_wild")
    report = eval_fit(["--root", str(root), "--landmarker", str(landmarker), "--out", str(tmp_path / "report.json")])
    assert report["found"] == report["images"] == 1
    assert report["mean"]["detector"]["pck@0.1"] >= 0.95 and report["mean"]["fit"]["pck@0.1"] >= 0.95
    assert report["mean"]["fit"]["mean_px"] < 15 and (tmp_path / "report.json").is_file()
