"""The page of `hands app`: three tabs (Reconstruct, Generate, Avatar) wired to the jobs in `hands.app`.

Every handler returns the page's one-line status (an error is that line, never a traceback); long jobs report
their tqdm bars through Gradio's progress.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from hands.app import avatar, generate, reconstruct  # noqa: E402
from hands.app.config import AppConfig  # noqa: E402
from hands.app.jobs import AppError  # noqa: E402

log = logging.getLogger("hands.app")

MEDIA_TYPES = [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".mp4", ".avi", ".mov", ".mkv", ".webm"]
PHOTO_TYPES = [".jpg", ".jpeg", ".png", ".bmp", ".webp"]
HAND_COLUMNS = ["frame", "side", "score", "reprojection (px)"]


def error_line(error: BaseException) -> str:
    """The status line of a failed job: the job's own sentence, or the exception's type and first line."""
    if isinstance(error, AppError):
        return f"**Error:** {error}"
    text = str(error).strip().splitlines()
    return f"**Error:** {type(error).__name__}: {text[0] if text else 'see the server log'}"


def guarded(outputs: int, job: Callable[..., tuple]) -> Callable[..., tuple]:
    """`job` whose failure leaves `outputs - 1` components as they were and puts the error in the last (status)."""

    # Gradio injects the progress tracker through this default (its documented pattern), mirroring tqdm bars.
    def run(*args: Any, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        try:
            return job(*args)
        except Exception as error:  # the page shows one line; the server log keeps the traceback
            log.exception("job failed")
            return (*[gr.update() for _ in range(outputs - 1)], error_line(error))

    run.__name__ = job.__name__
    return run


def _path(value: Any) -> str | None:
    """The local path of a gr.File value (a path string, or an object with .name in older Gradio)."""
    if value is None:
        return None
    return str(getattr(value, "name", value))


def missing_line(message: str | None, ready: str) -> str:
    return f"**Missing weights:** {message}" if message else ready


def reconstruct_tab(config: AppConfig, live: reconstruct.LiveReconstruction) -> None:
    status = reconstruct.predictor_status(config)
    gr.Markdown(missing_line(status["acr"], "ACR's weights found.") + " The fit front end needs no trained weights.",
                elem_id="reconstruct_weights")
    choices = [(text if status[key] is None else f"{text} - missing", key) for key, text in reconstruct.PREDICTORS.items()]
    with gr.Row():
        with gr.Column():
            predictor = gr.Radio(choices, value="fit", label="Predictor", elem_id="reconstruct_predictor")
            with gr.Tab("Photo or video"):
                upload = gr.File(label="Photo or video", file_types=MEDIA_TYPES, elem_id="reconstruct_upload")
                run = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct_run")
            with gr.Tab("Webcam"):
                mirrored = gr.Checkbox(True, label="The webcam image is mirrored (selfie view)")
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="webcam")
                live_view = gr.Image(label="Live hands", elem_id="webcam_overlay")
        with gr.Column():
            message = gr.Markdown(elem_id="reconstruct_status")
            overlay = gr.Image(label="Overlay", type="filepath", elem_id="reconstruct_overlay")
            scene = gr.Model3D(label="Hands in 3D (camera frame, y up)", elem_id="reconstruct_3d")
            video = gr.Video(label="Smoothed video", visible=False, elem_id="reconstruct_video")
            table = gr.Dataframe(headers=HAND_COLUMNS, label="Hands", elem_id="reconstruct_hands")
            files = gr.File(label="Downloads (.npz, .obj, .glb, summary.json, config.yaml)", file_count="multiple",
                            elem_id="reconstruct_files")

    def on_run(media, chosen):
        result = reconstruct.reconstruct(config, _path(media), chosen)
        return (str(result.overlay) if result.overlay and result.overlay.is_file() else None,
                str(result.scene) if result.scene else None,
                gr.update(value=str(result.video) if result.video else None, visible=result.video is not None),
                result.rows, [str(p) for p in result.downloads], result.message)

    run.click(guarded(6, on_run), [upload, predictor], [overlay, scene, video, table, files, message])
    camera.stream(lambda frame, mirror: None if frame is None else live.overlay(frame, mirror), [camera, mirrored],
                  [live_view], stream_every=0.1, concurrency_limit=1)


def generate_tab(config: AppConfig) -> None:
    missing = generate.generation_status(config)
    gr.Markdown(missing_line(missing, "AttentionHand's weights found."), elem_id="generate_weights")
    condition = gr.State(None)
    with gr.Row():
        with gr.Column():
            photo = gr.File(label="Photo (its fitted hands give the pose)", file_types=PHOTO_TYPES, elem_id="generate_upload")
            from_photo = gr.Button("Pose from the photo", elem_id="generate_from_photo")
            preset = gr.Dropdown(list(generate.PRESETS), value="rest", label="Or a preset pose", elem_id="generate_preset")
            from_preset = gr.Button("Pose from the preset", elem_id="generate_from_preset")
            prompt = gr.Textbox(label="Prompt", lines=2, elem_id="generate_prompt")
            with gr.Row():
                steps = gr.Slider(1, 100, value=20, step=1, label="Steps")
                guidance = gr.Slider(1.0, 20.0, value=9.0, step=0.5, label="Guidance")
            with gr.Row():
                seed = gr.Number(42, precision=0, label="Seed")
                samples = gr.Slider(1, 8, value=1, step=1, label="Samples")
            attention = gr.Checkbox(False, label="Attention guidance (the hand tokens' attention)")
            run = gr.Button("Generate", variant="primary", interactive=missing is None, elem_id="generate_run")
        with gr.Column():
            message = gr.Markdown(elem_id="generate_status")
            mesh = gr.Image(label="Mesh image (the condition)", type="filepath", elem_id="generate_mesh")
            gallery = gr.Gallery(label="Generated", elem_id="generate_gallery")
            files = gr.File(label="Downloads", file_count="multiple", elem_id="generate_files")

    def shown(made: generate.Condition):
        return str(made.folder), str(made.mesh_image), made.prompt, f"condition written to {made.folder}"

    def on_generate(folder, text, n_steps, scale, start, count, guided):
        if not folder:
            raise AppError("make a pose first (from the photo or a preset)")
        out, images = generate.generate(config, generate.read_condition(folder), text, n_steps, scale, start, count, guided)
        files_out = [str(p) for p in images] + [str(out / "records.jsonl"), str(out / "config.yaml")]
        return [str(p) for p in images], files_out, f"{len(images)} image(s) in {out}"

    outputs = [condition, mesh, prompt, message]
    from_photo.click(guarded(4, lambda upload: shown(generate.condition_from_photo(config, _path(upload)))), [photo], outputs)
    from_preset.click(guarded(4, lambda name: shown(generate.condition_from_preset(config, name))), [preset], outputs)
    run.click(guarded(3, on_generate), [condition, prompt, steps, guidance, seed, samples, attention], [gallery, files, message])


def avatar_tab(config: AppConfig) -> None:
    missing = avatar.avatar_status(config)
    gr.Markdown(missing_line(missing, "OHTA's prior found."), elem_id="avatar_weights")
    created = gr.State(None)
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="Photo, or a .zip of a one-shot folder (img/, mask/, anno/)",
                             file_types=[*PHOTO_TYPES, ".zip"], elem_id="avatar_upload")
            run = gr.Button("Create the avatar", variant="primary", interactive=missing is None, elem_id="avatar_run")
            pose = gr.Dropdown(list(avatar.ANIMATIONS), value="fist", label="Animate to a pose", elem_id="avatar_pose")
            animate = gr.Button("Animate", elem_id="avatar_animate")
            painter = gr.ImageEditor(label="Paint on the input, then paint it into the avatar", type="numpy",
                                     sources=[], elem_id="avatar_painter")
            paint = gr.Button("Paint into the avatar", elem_id="avatar_paint")
        with gr.Column():
            message = gr.Markdown(elem_id="avatar_status")
            turntable = gr.Video(label="Turntable", autoplay=True, loop=True, elem_id="avatar_turntable")
            animation = gr.Video(label="Animation", autoplay=True, loop=True, elem_id="avatar_animation")
            mesh = gr.Model3D(label="Avatar (.glb, vertex colours)", elem_id="avatar_3d")
            files = gr.File(label="Downloads", file_count="multiple", elem_id="avatar_files")

    def shown(result: avatar.AvatarResult):
        files_out = [str(result.glb), str(result.turntable), str(result.folder / "config.yaml")]
        return (result, str(result.turntable), str(result.glb), str(result.input_image), files_out, result.message)

    def on_create(media):
        folder, image = avatar.oneshot_from_upload(config, _path(media))
        return shown(avatar.create(config, folder, image))

    def on_animate(result, name):
        if result is None:
            raise AppError("create an avatar first")
        return str(avatar.animate(config, result.folder, name)), f"animated to {name}"

    def on_paint(result, value):
        if result is None:
            raise AppError("create an avatar first")
        if not value or value.get("composite") is None:
            raise AppError("paint on the input image first")
        layers = [np.asarray(layer) for layer in value.get("layers") or [] if layer is not None]
        strokes = np.zeros(np.asarray(value["composite"]).shape[:2], bool)
        for layer in layers:
            strokes |= layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[-1] == 4 else layer.any(-1)
        painted = np.ascontiguousarray(np.asarray(value["composite"])[..., :3]).astype(np.uint8)
        return shown(avatar.edit(config, result, painted, strokes))

    outputs = [created, turntable, mesh, painter, files, message]
    run.click(guarded(6, on_create), [upload], outputs)
    animate.click(guarded(2, on_animate), [created, pose], [animation, message])
    paint.click(guarded(6, on_paint), [created, painter], outputs)


def build_app(config: AppConfig) -> tuple[gr.Blocks, reconstruct.LiveReconstruction]:
    """The page (not yet launched) and the live webcam session it feeds (close it when the app stops)."""
    live = reconstruct.LiveReconstruction(config)
    with gr.Blocks(title="hands") as page:
        gr.Markdown("# hands\nHands from photos (Reconstruct), hand images from poses (Generate, AttentionHand) and "
                    f"one-shot hand avatars (Avatar, OHTA). Every run is written to `{Path(config.out).resolve()}`.")
        with gr.Tab("Reconstruct", elem_id="tab_reconstruct"):
            reconstruct_tab(config, live)
        with gr.Tab("Generate", elem_id="tab_generate"):
            generate_tab(config)
        with gr.Tab("Avatar", elem_id="tab_avatar"):
            avatar_tab(config)
    return page, live


def launch(config: AppConfig, auth: tuple[str, str] | None = None, block: bool = True) -> gr.Blocks:
    """Serve the app on config.host:config.port (uploads capped at config.max_upload_mb; only the output
    folder is served besides Gradio's own uploads). With `block=False` it returns once the server runs."""
    Path(config.out).mkdir(parents=True, exist_ok=True)
    page, live = build_app(config)
    page.queue(default_concurrency_limit=1)
    try:
        page.launch(server_name=config.host, server_port=config.port, auth=auth, max_file_size=config.max_upload_bytes,
                    allowed_paths=[str(Path(config.out).resolve())], ssr_mode=False, show_error=False,
                    prevent_thread_lock=not block, quiet=not block)
    finally:
        if block:
            live.close()
    return page
