"""The browser app's jobs without a browser: verbs' errors as one line, safe uploads, the 3D scene, the presets,
pose animations and browser videos."""

import json
import zipfile

import numpy as np
import pytest
import torch

from hands.app.config import AppConfig
from hands.app.generate import PRESET_DEPTH, condition_from_preset, preset_hands, read_condition
from hands.app.jobs import AppError, copy_upload, extract_oneshot_zip, missing_file, new_run_folder, run_verb, safe_name
from hands.io.images import write_image
from hands.mano import build_mano

K = np.array([[600.0, 0, 255.5], [0, 600.0, 255.5], [0, 0, 1]])


def test_a_failing_verb_is_one_line(tmp_path):
    with pytest.raises(AppError) as caught:
        run_verb(["fit", "--inputs", str(tmp_path / "absent.jpg"), "--out", str(tmp_path / "out")])
    message = str(caught.value)
    assert "absent.jpg" in message and "\n" not in message and "Traceback" not in message
    with pytest.raises(AppError, match="unknown verb"):
        run_verb(["no_such_verb"])


def test_uploads_are_copied_under_safe_names_and_capped(tmp_path):
    source = tmp_path / "../weird name;rm -rf.JPG"
    source.write_bytes(b"x" * 100)
    copied = copy_upload(source, tmp_path / "in", max_bytes=1000)
    assert copied.parent == tmp_path / "in" and copied.name == "weird_name_rm_-rf.jpg" and copied.read_bytes() == b"x" * 100
    with pytest.raises(AppError, match="limit is"):
        copy_upload(source, tmp_path / "in2", max_bytes=50)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(AppError, match="empty"):
        copy_upload(tmp_path / "empty.png", tmp_path / "in3", max_bytes=1000)
    assert safe_name("...") == "input"
    first, second = new_run_folder(tmp_path, "job", "a b"), new_run_folder(tmp_path, "job", "a b")
    assert first != second and first.parent == second.parent == tmp_path / "job" and not any(first.iterdir())
    assert missing_file(source, "x", "--x") is None and "--x PATH" in missing_file(tmp_path / "no.pkl", "x", "--x")


def test_oneshot_zip_is_unpacked_and_traversal_refused(tmp_path):
    archive = tmp_path / "oneshot.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("hand/img/a.jpg", b"jpg")
        bundle.writestr("hand/mask/a.png", b"png")
        bundle.writestr("hand/anno/a.pkl", b"pkl")
        bundle.writestr("hand/notes.txt", b"ignored")
    image = extract_oneshot_zip(archive, tmp_path / "input", 10_000)
    assert image == tmp_path / "input" / "img" / "a.jpg"
    assert sorted(str(p.relative_to(tmp_path / "input")) for p in (tmp_path / "input").rglob("*") if p.is_file()) == \
        ["anno/a.pkl", "img/a.jpg", "mask/a.png"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../img/a.jpg", b"jpg")
    with pytest.raises(AppError, match="refusing"):
        extract_oneshot_zip(evil, tmp_path / "evil", 10_000)
    with pytest.raises(AppError, match="more than"):
        extract_oneshot_zip(archive, tmp_path / "big", 5)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(AppError, match="not a readable .zip"):
        extract_oneshot_zip(tmp_path / "bad.zip", tmp_path / "bad", 10_000)


def test_the_scene_holds_each_hand_in_gltf_axes(tmp_path):
    import trimesh

    from hands.app.reconstruct import hand_faces, write_scene
    from hands.prediction.types import save_predictions

    hands = preset_hands("two hands interacting", K)
    save_predictions(tmp_path / "frame.npz", hands)
    faces = hand_faces()
    scene = trimesh.load(write_scene(tmp_path / "frame.npz", tmp_path / "scene.glb", faces), process=False)
    assert sorted(scene.geometry) == ["left_hand", "right_hand"]
    for hand in hands:
        mesh = scene.geometry[f"{hand.side}_hand"]
        assert mesh.vertices.shape == (778, 3)
        np.testing.assert_array_equal(mesh.faces, faces[hand.side])
        np.testing.assert_allclose(mesh.vertices, hand.vertices * [1, -1, -1], atol=1e-6)  # OpenCV -> glTF axes
    save_predictions(tmp_path / "empty.npz", [])
    assert write_scene(tmp_path / "empty.npz", tmp_path / "none.glb", hand_faces()) is None


def test_presets_are_posed_mano_hands_facing_the_camera():
    layers = {side: build_mano(side, pose_convention="flat", dtype=torch.float64) for side in ("right", "left")}
    for name in ("rest", "point", "two hands interacting"):
        hands = preset_hands(name, K)
        for hand in hands:
            as_t = lambda a: torch.as_tensor(a)[None]  # noqa: E731
            out = layers[hand.side](as_t(hand.global_orient), as_t(hand.hand_pose), as_t(hand.betas), as_t(hand.transl))
            np.testing.assert_allclose(out.vertices[0].numpy(), hand.vertices, atol=1e-9)
            uv = hand.joints[:, :2] / hand.joints[:, 2:] * 600.0 + 255.5
            np.testing.assert_allclose(hand.keypoints_2d, uv, atol=1e-9)
        centre = np.concatenate([h.vertices for h in hands]).mean(0)
        assert abs(np.linalg.norm(centre) - PRESET_DEPTH) < 0.03
    rest = preset_hands("rest", K)[0]
    wrist, thumb, pinky, middle = rest.keypoints_2d[[0, 4, 20, 12]]
    assert middle[1] < wrist[1] - 100  # fingers up
    assert thumb[0] > pinky[0]  # a right hand's palm: the thumb on the image's right
    right, left = preset_hands("two hands interacting", K)
    gap = torch.cdist(torch.as_tensor(right.vertices), torch.as_tensor(left.vertices)).min()
    assert gap < 0.005  # the generator's scene with contact, moved rigidly


def test_a_preset_condition_is_a_modalities_file(tmp_path):
    from hands.attentionhand.data import read_modalities

    condition = condition_from_preset(AppConfig(out=str(tmp_path), image_size=128), "fist")
    entry = read_modalities(condition.manifest)[0]
    assert entry.mesh == condition.mesh_image and "fist" in condition.prompt
    assert read_condition(condition.folder).prompt == condition.prompt
    line = json.loads(condition.manifest.read_text())
    x, y, w, h = line["bbox"]
    assert w > 20 and h > 20 and x + w <= 128 and y + h <= 128


def test_pose_animation_goes_to_the_pose_and_back():
    from hands.app.avatar import pose_animation
    from hands.mano.poses import named_hand_pose

    poses = pose_animation("fist", 9)
    assert poses.shape == (9, 45)
    np.testing.assert_allclose(poses[0], 0, atol=1e-12)
    np.testing.assert_allclose(poses[-1], 0, atol=1e-9)
    np.testing.assert_allclose(poses[4], named_hand_pose("fist"), atol=1e-12)
    with pytest.raises(AppError, match="unknown pose"):
        pose_animation("wave")


def test_browser_video_is_h264_with_every_frame(tmp_path):
    import av

    from hands.io.video import VideoFileWriter, browser_video

    frames = [np.full((48, 64, 3), 40 + 20 * i, np.uint8) for i in range(8)]
    with VideoFileWriter(tmp_path / "a.mp4", fps=12) as writer:
        for frame in frames:
            writer.write(frame)
    out = browser_video(tmp_path / "a.mp4", tmp_path / "b.mp4")
    with av.open(str(out)) as reader:
        stream = reader.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in reader.decode(stream)]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (64, 48)
    assert len(decoded) == len(frames)
    with av.open(str(tmp_path / "a.mp4")) as reader:  # the same pictures as the source video (mp4v's own loss aside)
        source = [f.to_ndarray(format="rgb24") for f in reader.decode(reader.streams.video[0])]
    assert all(np.abs(d.astype(int) - s.astype(int)).mean() < 3 for d, s in zip(decoded, source))
    with pytest.raises(FileExistsError):
        browser_video(tmp_path / "a.mp4", tmp_path / "b.mp4")


def test_app_config_checks_its_fields():
    with pytest.raises(ValueError, match="image_size"):
        AppConfig(image_size=100)
    with pytest.raises(ValueError, match="port"):
        AppConfig(port=70000)


def test_edit_needs_strokes_on_the_input(tmp_path):
    from hands.app.avatar import AvatarResult, edit

    root = tmp_path / "run"
    write_image(root / "input" / "img" / "a.png", np.zeros((40, 40, 3), np.uint8))
    (root / "input" / "anno").mkdir(parents=True)
    (root / "input" / "anno" / "a.pkl").write_bytes(b"")
    result = AvatarResult(root / "a", root / "input" / "img" / "a.png", root / "t.mp4", root / "a.glb")
    with pytest.raises(AppError, match="paint on the input"):
        edit(AppConfig(out=str(tmp_path)), result, np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), bool))
    with pytest.raises(AppError, match="40x40|paint on the input image as shown"):
        edit(AppConfig(out=str(tmp_path)), result, np.zeros((30, 40, 3), np.uint8), np.ones((30, 40), bool))


def test_a_photo_condition_and_the_live_view_use_the_fit(tmp_path):
    from hands.app.generate import condition_from_photo
    from hands.app.reconstruct import LiveReconstruction
    from hands.io.images import read_image
    from tests.conftest import fixture_path

    photo = fixture_path("ohta", "in_the_wild", "img", "02023.jpg")
    condition = condition_from_photo(AppConfig(out=str(tmp_path), image_size=128, device="cpu"), str(photo))
    assert "right hand" in condition.prompt and read_image(condition.mesh_image).shape == (128, 128, 3)
    assert (condition.folder / "input" / "02023.jpg").read_bytes() == photo.read_bytes()

    frame = read_image(photo)
    live = LiveReconstruction(AppConfig(device="cpu"))
    try:
        first, second = live.overlay(frame, mirrored=False), live.overlay(frame, mirrored=False)
    finally:
        live.close()
    changed = np.abs(first.astype(int) - frame).sum(-1) > 30
    assert first.shape == frame.shape and 0.01 < changed.mean() < 0.5  # the hand drawn over it, not the whole frame
    again = np.abs(second.astype(int) - frame).sum(-1) > 30
    assert (changed & again).sum() / (changed | again).sum() > 0.8  # the tracked hand stays on a still frame


def test_only_the_page_imports_gradio():
    from tests.test_layers import PACKAGE

    importers = sorted(p.name for p in (PACKAGE / "app").glob("*.py") if "import gradio" in p.read_text())
    assert importers == ["ui.py"]


def test_a_video_gives_the_smoothed_run_and_a_browser_copy(tmp_path):
    import av
    import cv2

    from hands.app.reconstruct import reconstruct
    from hands.io.images import read_image
    from hands.io.video import VideoFileWriter
    from tests.conftest import fixture_path

    frame = read_image(fixture_path("ohta", "in_the_wild", "img", "02023.jpg"))
    frame = cv2.resize(frame, (frame.shape[1] // 4 * 2, frame.shape[0] // 4 * 2))  # half size, even sides
    with VideoFileWriter(tmp_path / "clip.mp4", fps=10) as writer:
        for _ in range(3):
            writer.write(frame)
    result = reconstruct(AppConfig(out=str(tmp_path / "app"), device="cpu"), str(tmp_path / "clip.mp4"))
    assert result.video is not None and result.video.parent == result.folder
    with av.open(str(result.video)) as reader:
        assert reader.streams.video[0].codec_context.name == "h264" and sum(1 for _ in reader.decode(video=0)) == 3
    assert len(result.rows) >= 2 and {row[1] for row in result.rows} == {"right"}  # the hand found in the frames
    assert any(p.suffix == ".mp4" for p in result.downloads) and "3 frame(s)" in result.message
    config = (result.folder / "hands" / "config.yaml").read_text()
    assert "temporal: true" in config and "mode: video" in config
