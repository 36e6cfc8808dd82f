"""What `hands app` runs with: where it listens, where runs go, and the weights of each tab."""

from __future__ import annotations

import dataclasses
from typing import Literal

from hands.config import check_fields
from hands.io.home import home_file


@dataclasses.dataclass
class AppConfig:
    """The app's settings (flags of `hands app`; also saved as `<out>/app.yaml` at start)."""

    host: str = "127.0.0.1"
    """Address to listen on: loopback by default; 0.0.0.0 shares it on the network (then set --auth)."""
    port: int = 7860
    """Port to listen on."""
    out: str = "outputs/app"
    """Folder of the runs: <out>/<tab>/<time>_<name>/, each laid out as the CLI verb writes it."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda[:N]."""
    max_upload_mb: float = 50.0
    """Largest upload (photo, video, .zip) accepted, MB."""
    acr_checkpoint: str = str(home_file("acr", "wild.pkl"))
    """ACR's weights for the Reconstruct tab (the release's wild.pkl or a `hands train` checkpoint)."""
    attentionhand: str = str(home_file("attentionhand", "attentionhand.ckpt"))
    """AttentionHand's weights for the Generate tab (ldm .ckpt or a diffusers SD1.5 folder)."""
    architecture: Literal["sd15", "tiny"] = "sd15"
    """Layout of an ldm-format AttentionHand checkpoint (tiny: the test models)."""
    image_size: int = 512
    """Side of the generated images, pixels (AttentionHand: 512; a multiple of 64)."""
    ohta_prior: str = str(home_file("ohta", "pretrained_prior_learning.tar"))
    """OHTA's prior for the Avatar tab (the release's .tar or an avatar folder)."""
    avatar_size: int = 256
    """Side of the avatar's one-shot input, pixels (OHTA: 256)."""
    avatar_overrides: list[str] = dataclasses.field(default_factory=list)
    """Extra `key=value` settings of `hands avatar create` (e.g. creation.finetune_steps=50)."""
    turntable_frames: int = 36
    """Frames of the avatar's turntable video."""

    def __post_init__(self) -> None:
        check_fields(self, at_least={"port": 0, "max_upload_mb": 0.1, "image_size": 64, "avatar_size": 32,
                                     "turntable_frames": 2}, at_most={"port": 65535}, multiple_of={"image_size": 64})

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2 ** 20)
