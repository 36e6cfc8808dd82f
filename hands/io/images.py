"""Image files: decoding with a clear error, encoding, and atomic writing. Images are uint8 RGB (H, W, 3) (or grey
(H, W)) at these boundaries; the files hold what OpenCV reads and writes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hands.io.atomic import atomic_write_bytes


class ImageReadError(OSError):
    """An image file is missing or cannot be decoded."""


def decode_image_file(path: str | Path, flags: int = cv2.IMREAD_COLOR, what: str = "image", needed_by: str = "") -> np.ndarray:
    """The array OpenCV decodes from a file with `flags`; an ImageReadError names the file (as `what`, and who
    `needed_by` it when missing) when it is missing or cannot be decoded."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{what} not found: {path}" + (f" ({needed_by})" if needed_by else ""))
    data = path.read_bytes()
    if truncated(data):
        raise ImageReadError(f"{what} {path} is truncated (the file ends before the image does)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise ImageReadError(f"could not decode {what} {path} (corrupt or not an image)")
    return image


def truncated(data: bytes) -> bool:
    """Whether encoded JPEG or PNG bytes stop before their end marker (libjpeg fills the missing rows with grey and
    only warns on stderr; libpng may do the same). Other formats are not checked."""
    if data[:3] == b"\xff\xd8\xff":
        return not data.rstrip(b"\x00\r\n ")[-2:] == b"\xff\xd9"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-12:]
    return False


def read_image(path: str | Path) -> np.ndarray:
    """uint8 RGB (H,W,3) from an image file; a clear error names the file when it is missing or corrupt."""
    return cv2.cvtColor(decode_image_file(path), cv2.COLOR_BGR2RGB)


def encode_image(image_rgb: np.ndarray, suffix: str, jpeg_quality: int | None = None) -> bytes:
    """uint8 RGB (H, W, 3) or grey (H, W) image -> encoded bytes of the format `suffix` names (.jpg, .png);
    `jpeg_quality` (1-100) for .jpg (OpenCV's default, 95, without it)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if jpeg_quality is not None else []
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR) if image_rgb.ndim == 3 else image_rgb, params)
    if not ok:
        raise OSError(f"could not encode a {suffix} image")
    return encoded.tobytes()


def write_image(path: str | Path, image_rgb: np.ndarray, overwrite: bool = False) -> Path:
    """Write an image atomically (temp file + rename in the same folder), in the format of its suffix; an existing
    file is kept unless `overwrite`."""
    path = Path(path)
    return atomic_write_bytes(path, encode_image(image_rgb, path.suffix), overwrite)
