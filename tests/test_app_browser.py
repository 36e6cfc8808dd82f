"""`hands app` in a real browser: Debian's Chromium, headless, driven by Playwright against the app on loopback.

One app runs with no weights (Reconstruct with the fit front end; Generate and Avatar say what is missing), one
with the tiny test models (Generate makes an image, Avatar a turntable). CI sets HANDS_REQUIRE_BROWSER=1, so a
missing browser fails there instead of skipping.
"""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from hands.io.images import read_image
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a test-pattern camera
FAST_AVATAR = ["creation.views=2", "creation.inversion_steps=3", "creation.finetune_steps=2", "creation.edit_steps=2"]
JOB_TIMEOUT_MS = 300_000


def _require_browser() -> None:
    reason = None
    try:
        import gradio  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        reason = f"{error.name} is not installed (make setup installs gradio and playwright)"
    if reason is None and not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; make browser does it as root)"
    if reason:
        if os.environ.get("HANDS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_on_a_free_port(config, tries: int = 5):
    """Launch the app on config.port, or on another free port when something took that one meanwhile (another
    process may bind a port between our probe and Gradio's)."""
    from hands.app.ui import launch

    for attempt in range(tries):
        try:
            return launch(config, block=False)
        except OSError:
            if attempt == tries - 1:
                raise
            config.port = _free_port()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A photo with a right hand: the OHTA fixture when ../shared is present, else a synthetic two-hand render."""
    fixture = FIXTURES / "ohta" / "in_the_wild" / "img" / "02023.jpg"
    if fixture.is_file():
        return fixture
    from hands.cli.showcase import synthetic_two_hand_images
    from hands.io.images import write_image

    images = synthetic_two_hand_images(1)
    assert images, "the synthetic generator gave no image with two detected hands"
    return write_image(tmp_path_factory.mktemp("photo") / "synthetic.png", images[0])


@pytest.fixture(scope="module")
def apps(tmp_path_factory, tiny_sd):
    """(url without weights, url with the tiny models, their output folders)."""
    _require_browser()
    import torch

    from hands.app.config import AppConfig
    from hands.mano.builtin import builtin_model
    from hands.ohta.avatar import HandAvatar
    from hands.ohta.checkpoint import save_avatar

    root = tmp_path_factory.mktemp("app")
    absent = root / "no_weights"
    bare = AppConfig(port=_free_port(), out=str(root / "bare"), device="cpu", acr_checkpoint=str(absent / "wild.pkl"),
                     attentionhand=str(absent / "attentionhand.ckpt"),
                     ohta_prior=str(absent / "pretrained_prior_learning.tar"))
    torch.manual_seed(0)
    prior = save_avatar(HandAvatar(builtin_model("right")), root / "tiny_prior")
    _, folder, _ = tiny_sd
    tiny = AppConfig(port=_free_port(), out=str(root / "tiny"), device="cpu", attentionhand=str(folder), image_size=64,
                     ohta_prior=str(prior), avatar_size=40, turntable_frames=4, avatar_overrides=FAST_AVATAR,
                     acr_checkpoint=str(absent / "wild.pkl"))
    pages = [launch_on_a_free_port(config) for config in (bare, tiny)]
    assert bare.port != tiny.port
    yield f"http://127.0.0.1:{bare.port}/", f"http://127.0.0.1:{tiny.port}/", Path(bare.out), Path(tiny.out)
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def browser(apps):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def wait_for_status(page, element: str, pattern: str) -> str:
    """The text of `element` once it matches the JS regex `pattern` or reports an error; fails on an error."""
    page.wait_for_function(
        f"(() => {{ const e = document.querySelector('{element}'); return e && /{pattern}|Error/.test(e.innerText); }})()",
        timeout=JOB_TIMEOUT_MS)
    text = page.locator(element).inner_text()
    assert "Error" not in text, text
    return text


def upload(page, element: str, path: Path) -> None:
    page.locator(f"{element} input[type=file]").set_input_files(str(path))
    page.wait_for_function(f"document.querySelector('{element}').innerText.includes('{path.name}')", timeout=30_000)


def test_reconstruct_with_the_fit_and_missing_weights(apps, browser, photo, tmp_path):
    import trimesh

    bare_url, _, bare_out, _ = apps
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    glbs: list[bytes] = []
    page.on("response", lambda response: glbs.append(response.body()) if response.url.endswith(".glb") and response.ok else None)
    page.goto(bare_url)
    page.wait_for_selector("#reconstruct_upload")
    assert "wild.pkl" in page.locator("#reconstruct_weights").inner_text()
    upload(page, "#reconstruct_upload", photo)
    page.click("#reconstruct_run")
    status = wait_for_status(page, "#reconstruct_status", "files in")
    assert "right" in status
    page.wait_for_selector("#reconstruct_overlay img", timeout=30_000)
    page.wait_for_function("document.querySelector('#reconstruct_files').innerText.includes('summary')", timeout=30_000)
    downloads = page.locator("#reconstruct_files").inner_text()
    for suffix in (".npz", ".obj", ".glb", "summary", "config"):
        assert suffix in downloads, downloads
    for _ in range(60):  # the viewer fetches the .glb after the page shows the result
        if glbs:
            break
        page.wait_for_timeout(500)
    assert glbs, "the 3D view fetched no .glb"
    scene = trimesh.load(io.BytesIO(glbs[-1]), file_type="glb", process=False)
    assert scene.geometry and all(mesh.vertices.shape == (778, 3) for mesh in scene.geometry.values())
    run = next((bare_out / "reconstruct").iterdir())
    assert (run / "hands" / "config.yaml").is_file() and (run / "hands" / "summary.json").is_file()
    page.screenshot(path=str(tmp_path / "reconstruct.png"), full_page=True)

    page.get_by_role("tab", name="Generate").click()
    assert "attentionhand.ckpt" in page.locator("#generate_weights").inner_text()
    assert page.locator("#generate_run").is_disabled()
    page.get_by_role("tab", name="Avatar").click()
    assert "pretrained_prior_learning.tar" in page.locator("#avatar_weights").inner_text()
    assert page.locator("#avatar_run").is_disabled()
    page.screenshot(path=str(tmp_path / "missing_weights.png"), full_page=True)
    page.close()


def test_generate_and_avatar_with_the_tiny_models(apps, browser, photo, tmp_path):
    _, tiny_url, _, tiny_out = apps
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(tiny_url)
    page.get_by_role("tab", name="Generate").click()
    assert "found" in page.locator("#generate_weights").inner_text()
    page.click("#generate_from_preset")
    wait_for_status(page, "#generate_status", "condition written")
    page.wait_for_selector("#generate_mesh img", timeout=30_000)
    assert "open" in page.locator("#generate_prompt textarea").input_value()  # the rest preset's pose words
    page.locator("#generate_prompt textarea").fill("a photo of a hand with blue nails")
    page.click("#generate_run")
    wait_for_status(page, "#generate_status", "image.s. in")
    page.wait_for_selector("#generate_gallery img", timeout=30_000)
    records = next((tiny_out / "generate").iterdir()) / "generated_1" / "records.jsonl"
    assert "blue nails" in records.read_text()
    page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)

    page.get_by_role("tab", name="Avatar").click()
    upload(page, "#avatar_upload", photo)
    page.click("#avatar_run")
    wait_for_status(page, "#avatar_status", "avatar created")
    page.wait_for_function("(() => { const v = document.querySelector('#avatar_turntable video'); return v && v.src; })()",
                           timeout=30_000)
    page.click("#avatar_animate")
    wait_for_status(page, "#avatar_status", "animated to")
    page.wait_for_function("(() => { const v = document.querySelector('#avatar_animation video'); return v && v.src; })()",
                           timeout=30_000)
    created = [p for p in (tiny_out / "avatar").rglob("avatar.glb")]
    assert created and (created[0].parent / "config.yaml").is_file() and (created[0].parent / "turntable_h264.mp4").is_file()

    # texture editing: a brush stroke on the input becomes the edit's mask and painted pixels
    canvas = page.locator("#avatar_painter canvas").first
    page.locator("#avatar_painter button[aria-label='Brush']").click()
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 20, y)
    page.mouse.down()
    for k in range(8):
        page.mouse.move(x - 20 + 5 * k, y + k)
    page.mouse.up()
    page.click("#avatar_paint")
    wait_for_status(page, "#avatar_status", "edit painted in")
    page.screenshot(path=str(tmp_path / "avatar.png"), full_page=True)
    page.close()
    edit = next((tiny_out / "avatar").rglob("edits/input_1"))
    mask = read_image(next((edit / "mask").iterdir()))[..., 0] > 0
    painted = read_image(next((edit / "img").iterdir())).astype(int)
    original = read_image(next((edit.parents[2] / "input" / "img").iterdir())).astype(int)
    assert mask.any() and (np.abs(painted - original).sum(-1) > 30)[mask].mean() > 0.9
    assert (edit.parent / next((edit / "img").iterdir()).stem / "avatar.glb").is_file()


def test_the_webcam_streams_through_the_fit(apps, browser):
    bare_url = apps[0]
    context = browser.new_context(viewport={"width": 1280, "height": 1600}, permissions=["camera"])
    page = context.new_page()
    page.goto(bare_url)
    page.get_by_role("tab", name="Webcam").click()
    page.locator("#webcam button", has_text="Click to Access Webcam").click()
    page.wait_for_selector("#webcam video", timeout=30_000)
    page.locator("#webcam button[aria-label='capture photo']").click()  # with streaming: start recording
    page.wait_for_selector("#webcam_overlay img", timeout=60_000)  # frames went through the fit and came back
    source = page.locator("#webcam_overlay img").get_attribute("src")
    page.wait_for_function(f"document.querySelector('#webcam_overlay img').src !== {source!r}", timeout=60_000)
    context.close()
