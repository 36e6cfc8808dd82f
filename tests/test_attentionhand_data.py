"""AttentionHand modalities: the released samples as they are, and our exported training data."""

import json

import cv2
import numpy as np
import pytest
import torch

from hands.attentionhand.data import ModalitiesDataset, ModalitiesError, hand_box_from_mesh, read_modalities
from hands.attentionhand.interhand_inputs import export_attentionhand
from hands.data.interhand.dataset import InterHandDataConfig, InterHandDataset
from hands.io.images import read_image
from tests.conftest import fixture_path


def test_released_samples_read_as_they_are():
    manifest = fixture_path("attentionhand", "samples", "modalities.json")
    entries = read_modalities(manifest)
    assert [e.file_id for e in entries] == ["000000000036", "000000000113", "000000000165"]
    data = ModalitiesDataset(manifest, size=64, require_rgb=False)
    item = data[0]
    assert item["text"] == "The woman is holding a pink umbrella with her hand."
    assert item["mesh_global"].shape == (3, 64, 64) and "rgb_global" not in item
    assert torch.equal(item["mesh_local"][0], item["mesh_local"][1])  # the local crop is grey
    x, y, w, h = item["box"].tolist()
    mesh = read_image(entries[0].mesh)
    assert 0 <= x and x + w <= mesh.shape[1] and 0 < w * h < 0.2 * mesh.shape[0] * mesh.shape[1]
    with pytest.raises(ModalitiesError, match="rgb"):
        ModalitiesDataset(manifest, size=64)


def test_malformed_modalities_are_clear_errors(tmp_path):
    manifest = tmp_path / "samples" / "modalities.json"
    manifest.parent.mkdir()
    manifest.write_text('{"mesh": "samples/mesh/a.jpg", "text": "samples/text/a.txt"}\n')
    with pytest.raises(ModalitiesError, match=r"modalities.json:1: 'mesh' file samples/mesh/a.jpg not found"):
        read_modalities(manifest)
    manifest.write_text('["not", "an", "object"]\n')
    with pytest.raises(ModalitiesError, match=r":1: each line needs"):
        read_modalities(manifest)
    manifest.write_text("{broken\n")
    with pytest.raises(ModalitiesError, match=r":1: not a JSON object"):
        read_modalities(manifest)
    with pytest.raises(ModalitiesError, match="no hand"):
        hand_box_from_mesh(np.zeros((8, 8, 3), np.uint8))


def test_exported_training_data(synthetic_root, tmp_path):
    config = InterHandDataConfig(root=str(synthetic_root), image_size=96, bbox_scale=2.0, require_mano=True)
    manifest = export_attentionhand(InterHandDataset(config), tmp_path / "data", limit=4)
    data = ModalitiesDataset(manifest, size=64)
    item = data[1]
    assert item["rgb_global"].shape == (3, 64, 64) and item["rgb_local"].shape == (3, 64, 64)
    assert -1 <= item["rgb_global"].min() and item["rgb_global"].max() <= 1
    stored = json.loads(manifest.read_text().splitlines()[1])["bbox"]
    assert item["box"].tolist() == stored
    # the local crop is the box of the global image, resized
    mesh = read_image(data.entries[1].mesh)
    derived = hand_box_from_mesh(mesh)
    assert np.abs(np.array(derived) - np.array(stored)).max() <= 2


def test_release_local_box_merges_the_first_two_contours():
    """datasets.py bounding_box: threshold the 512² mesh image at 127, merge the boxes of the first two external
    contours; a third blob is left out (all_pixels keeps it)."""
    mesh = np.zeros((256, 256, 3), np.uint8)
    mesh[20:60, 30:70] = 200     # three separate blobs
    mesh[100:140, 150:200] = 200
    mesh[200:230, 10:40] = 200
    small = cv2.resize(cv2.cvtColor(mesh, cv2.COLOR_RGB2GRAY), (512, 512))
    contours, _ = cv2.findContours((small > 127).astype(np.uint8) * 255, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rects = [cv2.boundingRect(c) for c in contours[:2]]
    x0, y0 = min(r[0] for r in rects), min(r[1] for r in rects)
    x1, y1 = max(r[0] + r[2] for r in rects), max(r[1] + r[3] for r in rects)
    release = hand_box_from_mesh(mesh, rule="release")
    np.testing.assert_allclose(release, np.array([x0, y0, x1 - x0, y1 - y0]) / 2)
    assert len(contours) == 3 and release[2] * release[3] < 200 * 210  # one blob is dropped
    assert hand_box_from_mesh(mesh, rule="all_pixels") == [10, 20, 190, 210]
    with pytest.raises(ModalitiesError, match="no hand"):
        hand_box_from_mesh(np.zeros((8, 8, 3), np.uint8), rule="release")
