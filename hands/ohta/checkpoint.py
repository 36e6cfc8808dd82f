"""Saving and loading OHTA avatars and priors.

Our format is a folder: `avatar.safetensors` (every learned tensor and the anchor samples, plus the MANO-HD skinning
weights under `mano_hd_weights`) and `avatar.yaml` (sizes, the hand model it was built on, what made it). The hand
model itself is never stored (MANO is licensed): loading rebuilds MANO-HD from the user's model and checks that it
is the same template.

The release's `pretrained_prior_learning.tar` / `one_shot.tar` (`{'iter', 'network', 'optimizer'}`) loads through
`release_to_ours`, a key map documented below; its anchor samples are loaded, not re-sampled, because the anchor
features only mean something at those points.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from hands.io.atomic import atomic_directory
from hands.mano.model_file import ManoModelData
from hands.ohta.avatar import HandAvatar
from hands.ohta.pairof import PairOFConfig
from hands.ohta.texture import AppearanceConfig

log = logging.getLogger(__name__)

AVATAR_WEIGHTS, AVATAR_CONFIG = "avatar.safetensors", "avatar.yaml"
FORMAT = "hands-ohta-avatar/1"


class AvatarCheckpointError(ValueError):
    """An avatar or prior file is missing, damaged or does not fit this model; the message names the file and keys."""


def template_checksum(avatar: HandAvatar) -> str:
    """A short hash of the MANO-HD template (meters, rounded to 0.1 mm) that identifies the hand model used."""
    template = np.round(np.asarray(avatar.mano.model.v_template, dtype=np.float64), 4)
    return hashlib.sha256(template.tobytes()).hexdigest()[:16]


def _learned_state(avatar: HandAvatar) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().contiguous() for key, value in avatar.state_dict().items()}


def save_avatar(avatar: HandAvatar, folder: str | Path, metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write an avatar (or a prior) to `folder` atomically; refuses to replace it unless `overwrite`."""
    tensors = _learned_state(avatar)
    tensors["mano_hd_weights"] = torch.as_tensor(avatar.mano.model.weights, dtype=torch.float64).contiguous()
    header = {"format": FORMAT, "hand_model": avatar.mano.model.source, "template_checksum": template_checksum(avatar),
              "appearance": dataclasses.asdict(avatar.appearance.config), "pairof": dataclasses.asdict(avatar.pairof.config),
              "metadata": metadata or {}}
    with atomic_directory(folder, overwrite) as tmp:
        save_file(tensors, str(tmp / AVATAR_WEIGHTS))
        OmegaConf.save(OmegaConf.create(header), tmp / AVATAR_CONFIG)
    return Path(folder)


def _tuple_fields(values: dict) -> dict:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}


def load_avatar(path: str | Path, model: ManoModelData, device: str | torch.device = "cpu") -> HandAvatar:
    """An avatar saved by `save_avatar` (its folder), or the release's `.tar`, on the user's hand model."""
    path = Path(path)
    if path.suffix in (".tar", ".pth", ".pt", ".ckpt"):
        return load_release_checkpoint(path, model).to(device)
    weights_file = path / AVATAR_WEIGHTS if path.is_dir() else path
    config_file = weights_file.with_name(AVATAR_CONFIG)
    for needed in (weights_file, config_file):
        if not needed.is_file():
            raise FileNotFoundError(f"avatar file not found: {needed} (an avatar folder written by create.py or "
                                    f"train.py holds {AVATAR_WEIGHTS} and {AVATAR_CONFIG}; the official prior is "
                                    "pretrained_prior_learning.tar)")
    header = OmegaConf.to_container(OmegaConf.load(config_file))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise AvatarCheckpointError(f"{config_file}: not an OHTA avatar of this project (format {FORMAT})")
    try:
        tensors = load_file(str(weights_file))
    except Exception as error:  # safetensors raises several types for damaged files
        raise AvatarCheckpointError(f"{weights_file}: cannot be read ({error})") from None
    try:
        appearance = AppearanceConfig(**_tuple_fields(header["appearance"]))
        pairof = PairOFConfig(**header["pairof"])
    except (KeyError, TypeError) as error:
        raise AvatarCheckpointError(f"{config_file}: bad sizes ({error})") from None
    avatar = HandAvatar(model, skinning_weights=tensors.pop("mano_hd_weights", None), pairof=pairof, appearance=appearance)
    if template_checksum(avatar) != header.get("template_checksum"):
        raise AvatarCheckpointError(f"{path}: made with the hand model '{header.get('hand_model')}', which differs from "
                                    f"'{model.source}' (pass the same MANO_RIGHT.pkl, or none for the built-in hand)")
    _load_exact(avatar, tensors, str(weights_file))
    return avatar.to(device)


def read_avatar_metadata(path: str | Path) -> dict:
    """The `metadata` an avatar folder was saved with ({} for the release's .tar files)."""
    config_file = Path(path) / AVATAR_CONFIG
    if not config_file.is_file():
        return {}
    header = OmegaConf.to_container(OmegaConf.load(config_file))
    return header.get("metadata", {}) if isinstance(header, dict) else {}


def _load_exact(avatar: HandAvatar, tensors: dict[str, torch.Tensor], source: str) -> None:
    expected = avatar.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(f"{name}: {keys[:6]}{' ...' if len(keys) > 6 else ''}"
                           for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys)
        raise AvatarCheckpointError(f"{source}: does not fit this avatar ({detail})")
    avatar.load_state_dict(tensors)


# The release's module names -> ours. Everything under smpl_body that is not listed is derived data (MANO-HD
# blendshapes, PairOF partition, anchor positions in the template) that we rebuild from the user's model.
_RENAMES = (
    (r"^smpl_body\.coap\.(part_encoder|local_encoder|decoder)\.", r"pairof.\1."),
    (r"^color_dict_list\.(\d+)$", r"appearance.anchors.features.\1"),
    (r"^(id_net_list|shadow_net_list)\.(\d+)\.(lin\d+)\.weight_g$", r"appearance.\1.\2.\3.parametrizations.weight.original0"),
    (r"^(id_net_list|shadow_net_list)\.(\d+)\.(lin\d+)\.weight_v$", r"appearance.\1.\2.\3.parametrizations.weight.original1"),
    (r"^(id_net_list|shadow_net_list)\.(\d+)\.(lin\d+)\.bias$", r"appearance.\1.\2.\3.bias"),
    (r"^(dict_fusion|shadow_dict_fusion)\.(\d+)\.(weight|bias)$", r"appearance.\1.\2.\3"),
    (r"^(id_code|id_feature|color_scale|color_shift)$", r"appearance.\1"),
    (r"^deformer\.(lin\d+\.(weight|bias)|vert_dict)$", r"deformer.\1"),
)
_DERIVED = re.compile(r"^smpl_body\.(?!coap\.(part_encoder|local_encoder|decoder)\.)|^smpl_body\.coap\.decoder_shape\.")
_ANCHOR = re.compile(r"^smpl_body\.coap\.partitioner\.(sample_face_tensor|w0|w1|w2)_(\d+)$")


def release_to_ours(network: dict[str, torch.Tensor], levels: tuple[int, ...]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map the release's `network` state dict to our avatar's keys; returns (state, unmapped keys). Anchor samples
    (`sample_face_tensor_N`, `w0_N`, `w1_N`, `w2_N`) become `appearance.anchors.faces_N` / `weights_N`."""
    state: dict[str, torch.Tensor] = {}
    anchors: dict[int, dict[str, torch.Tensor]] = {}
    unmapped = []
    for key, value in network.items():
        if (match := _ANCHOR.match(key)) is not None:
            anchors.setdefault(int(match.group(2)), {})[match.group(1)] = value
            continue
        for pattern, replacement in _RENAMES:
            if re.match(pattern, key):
                state[re.sub(pattern, replacement, key)] = value
                break
        else:
            if not _DERIVED.match(key):
                unmapped.append(key)
    for count in levels:
        parts = anchors.get(count, {})
        if set(parts) != {"sample_face_tensor", "w0", "w1", "w2"}:
            continue  # reported as missing by the exact load
        state[f"appearance.anchors.faces_{count}"] = parts["sample_face_tensor"].long().reshape(count, 3)
        state[f"appearance.anchors.weights_{count}"] = torch.stack(
            [parts[w].float().reshape(count) for w in ("w0", "w1", "w2")], dim=1)
    return state, unmapped


def ours_to_release(avatar: HandAvatar) -> dict[str, torch.Tensor]:
    """Our avatar's tensors under the release's names (the inverse of `release_to_ours`; used to test the map and
    to hand an avatar to the original code)."""
    inverse = (
        (r"^pairof\.(part_encoder|local_encoder|decoder)\.", r"smpl_body.coap.\1."),
        (r"^appearance\.anchors\.features\.(\d+)$", r"color_dict_list.\1"),
        (r"^appearance\.(\w+_list)\.(\d+)\.(lin\d+)\.parametrizations\.weight\.original0$", r"\1.\2.\3.weight_g"),
        (r"^appearance\.(\w+_list)\.(\d+)\.(lin\d+)\.parametrizations\.weight\.original1$", r"\1.\2.\3.weight_v"),
        (r"^appearance\.(\w+_list)\.(\d+)\.(lin\d+)\.bias$", r"\1.\2.\3.bias"),
        (r"^appearance\.((shadow_)?dict_fusion)\.", r"\1."),
        (r"^appearance\.(id_code|id_feature|color_scale|color_shift)$", r"\1"),
        (r"^deformer\.", r"deformer."),
    )
    out = {"smpl_body.lbs_weights": torch.as_tensor(avatar.mano.model.weights, dtype=torch.float32),
           "smpl_body.v_template": torch.as_tensor(avatar.mano.model.v_template, dtype=torch.float32)}
    for key, value in avatar.state_dict().items():
        if (match := re.match(r"^appearance\.anchors\.(faces|weights)_(\d+)$", key)) is not None:
            count = match.group(2)
            if match.group(1) == "faces":
                out[f"smpl_body.coap.partitioner.sample_face_tensor_{count}"] = value
            else:
                for i in range(3):
                    out[f"smpl_body.coap.partitioner.w{i}_{count}"] = value[:, i].reshape(1, -1)
            continue
        if key.startswith("pairof.") and not re.match(r"^pairof\.(part_encoder|local_encoder|decoder)\.", key):
            continue  # the partition, rebuilt from the model
        for pattern, replacement in inverse:
            if re.match(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise KeyError(f"no release name for {key}")
    return out


def load_release_checkpoint(path: str | Path, model: ManoModelData) -> HandAvatar:
    """The release's prior (`pretrained_prior_learning.tar`) or created avatar (`one_shot.tar`) on the user's MANO
    model: MANO-HD with the checkpoint's skinning weights, every learned tensor and the anchor samples."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OHTA checkpoint not found: {path} (the official prior is "
                                "pretrained_prior_learning.tar from the OHTA README; pass it with --checkpoint)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise AvatarCheckpointError(f"{path}: not a readable torch checkpoint of tensors ({error})") from None
    network = checkpoint.get("network", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(network, dict) or not all(isinstance(v, torch.Tensor) for v in network.values()):
        raise AvatarCheckpointError(f"{path}: expected {{'network': state_dict}} as OHTA saves it")
    avatar = HandAvatar(model, skinning_weights=network.get("smpl_body.lbs_weights"))
    if "smpl_body.v_template" in network:
        theirs = network["smpl_body.v_template"].double().numpy()
        ours = np.asarray(avatar.mano.model.v_template, dtype=np.float64)
        if theirs.shape != ours.shape or np.abs(theirs - ours).max() > 1e-4:
            log.warning("%s: its MANO-HD template differs from the one built from %s (max %.2g m); the prior was "
                        "learned on the official MANO_RIGHT.pkl", path, model.source,
                        float(np.abs(theirs - ours).max()) if theirs.shape == ours.shape else float("nan"))
    state, unmapped = release_to_ours(network, avatar.appearance.anchors.levels)
    if unmapped:
        raise AvatarCheckpointError(f"{path}: keys this loader does not know: {unmapped[:8]}")
    expected = avatar.state_dict()
    # a prior has no one-shot tensors (zeros/ones at creation start) and may predate the deformer
    for key in ("appearance.id_feature", "appearance.color_scale", "appearance.color_shift"):
        state.setdefault(key, expected[key])
    if not any(k.startswith("deformer.") for k in state):
        log.info("%s has no shape deformer; it stays at its initialisation (only prior learning uses it)", path)
        state.update({k: v for k, v in expected.items() if k.startswith("deformer.")})
    for key, value in expected.items():
        if key.startswith("pairof.") and key not in state and not re.match(r"^pairof\.(part_encoder|local_encoder|decoder)\.", key):
            state[key] = value  # the partition, rebuilt from the (checkpoint's) skinning weights
    _load_exact(avatar, state, str(path))
    return avatar
