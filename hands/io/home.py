"""Where the project's files live: one folder, `HANDS_HOME`, for weights, the landmarker bundle, metric weights
and caches (the README lists every file a user may put there).

`$HANDS_HOME` when set; else, when the package runs from a checkout of this repository (an editable install or
the source tree), the checkout's `checkpoints/`; else `~/.cache/hands`.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _is_checkout(folder: Path) -> bool:
    project = folder / "pyproject.toml"
    return project.is_file() and (folder / "hands" / "__init__.py").is_file() and 'name = "hands"' in project.read_text()


def hands_home() -> Path:
    """The folder holding weights and caches (not created here)."""
    if os.environ.get("HANDS_HOME"):
        return Path(os.environ["HANDS_HOME"]).expanduser()
    if _is_checkout(PACKAGE_ROOT):
        return PACKAGE_ROOT / "checkpoints"
    return Path.home() / ".cache" / "hands"


def home_file(*parts: str) -> Path:
    """A file under `hands_home()`, e.g. `home_file("acr", "wild.pkl")`."""
    return hands_home().joinpath(*parts)


def cache_dir(*parts: str) -> Path:
    """A cache folder under `hands_home()/cache` (index and tokenizer caches; safe to delete)."""
    return hands_home().joinpath("cache", *parts)


#: Every file a user may put under HANDS_HOME: relative path -> what it is (the README's table is made from this).
HOME_FILES: dict[str, str] = {
    "acr/wild.pkl": "ACR's official weights (`hands reconstruct`, `demo.py`)",
    "attentionhand/attentionhand.ckpt": "AttentionHand's official weights (`hands generate`, `create.py --text`)",
    "attentionhand/sd15_ini.ckpt": "SD1.5 + ControlNet start of AttentionHand training (`hands train`)",
    "ohta/pretrained_prior_learning.tar": "OHTA's official prior (`hands avatar create`)",
    "mano/MANO_RIGHT.pkl, mano/MANO_LEFT.pkl": "MANO (licensed; or $HANDS_MANO_DIR, or the checkout's models/mano/)",
    "mediapipe/hand_landmarker.task": "MediaPipe's hand models, built by `make setup` (`hands fit`)",
    "metrics/vgg16-397923af.pth": "LPIPS-VGG backbone (OHTA creation and evaluation)",
    "metrics/alexnet-owt-7be5be79.pth": "LPIPS-Alex backbone (optional)",
    "metrics/pt_inception-2015-12-05-6726825d.pth": "FID Inception weights (AttentionHand evaluation)",
    "cache/": "CLIP tokenizer files and InterHand2.6M indexes of read-only datasets (safe to delete)",
}
