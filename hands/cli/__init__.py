"""The `hands` command: one verb per task, each a module of this package imported only when it runs (so
`hands --help` answers without loading torch, Lightning or diffusers).

This is also the layer that chains methods (methods import no other method): text-to-avatar, for example, is
AttentionHand's image made into OHTA's input here.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from typing import Callable

#: verb -> (module with `main(argv)`, one line for `hands --help`). Verbs with sub-verbs map to a table below.
VERBS: dict[str, tuple[str, str]] = {
    "showcase": ("hands.cli.showcase", "the main job on inputs the project makes: photo -> MANO hands (make demo)"),
    "app": ("hands.cli.app", "the browser app: Reconstruct, Generate and Avatar tabs (Gradio, 127.0.0.1)"),
    "demo": ("hands.cli.demo", "the hand model in poses, or ACR / fitting on your images and webcam (demo.py's flags)"),
    "reconstruct": ("hands.cli.reconstruct", "ACR: zero, one or two hands -> MANO, on images, folders, videos, webcams"),
    "fit": ("hands.cli.fit", "MediaPipe keypoints + MANO fitting on any photo, folder, video or webcam"),
    "generate": ("hands.cli.generate", "AttentionHand: hand images from mesh renders and prompts (inference.py)"),
    "avatar": ("", "OHTA avatars: create | edit | animate | export | interpolate | sample | evaluate"),
    "train": ("hands.cli.train", "train a registered method (acr, attentionhand, ohta) from a YAML config"),
    "prepare": ("", "training inputs: acr | ohta | attentionhand | ohta_input | modalities | landmarker"),
    "eval": ("", "evaluation: acr (InterNet / IntagHand protocols) | fit (labelled photos) | detection (recall set) | generation"),
    "synth": ("hands.cli.synth", "a synthetic hand dataset in the InterHand2.6M format"),
}

#: verb -> sub-verb -> (module, one line, arguments put before the user's).
SUB_VERBS: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "avatar": {
        "create": ("hands.cli.avatar", "a one-shot avatar from one image (--input) or a prompt (--text)", ()),
        "edit": ("hands.cli.avatar", "paint the masked region of an image into an avatar (create.py --edit)", ("--edit",)),
        **{tool: ("hands.cli.avatar", text, (tool,)) for tool, text in (
            ("animate", "render an avatar through poses and a turntable to .mp4"),
            ("export", "the avatar as a .glb/.obj mesh with vertex colours"),
            ("interpolate", "render identities between two avatars"),
            ("sample", "render new identities drawn from a prior"),
            ("evaluate", "PSNR / SSIM / LPIPS on test frames (OHTA's protocol)"))},
    },
    "prepare": {
        **{name: ("hands.cli.prepare_interhand", f"{name}'s training inputs from an InterHand-format dataset", (name,))
           for name in ("acr", "ohta", "attentionhand")},
        "ohta_input": ("hands.cli.prepare_ohta_input", "photo -> OHTA's one-shot input (fitted MANO hand, mask)", ()),
        "modalities": ("hands.cli.prepare_modalities", "photo -> AttentionHand's modalities (mesh image, prompt)", ()),
        "landmarker": ("hands.cli.setup_landmarker", "build MediaPipe's HandLandmarker bundle (make setup does)", ()),
        "lifter": ("hands.cli.prepare_lifter", "train the fit front end's keypoint lifter for a hand model (once)", ()),
    },
    "eval": {
        "acr": ("hands.cli.eval_acr", "ACR on an InterHand-format split: MPJPE, MPVPE, MRRPE, phantom hands", ()),
        "fit": ("hands.cli.eval_fit", "the fit front end against labelled photos: PCK and pixel errors", ()),
        "detection": ("hands.cli.eval_detection", "hand detection: recall, PCK and false hands per kind of image", ()),
        "generation": ("hands.cli.eval_generation", "generated images: FID/KID, FID-H/KID-H, hand confidence, pose error", ()),
    },
}

#: What a bad input raises; a verb run from the command line turns these into one line.
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, FileExistsError, ValueError, OSError,
                                                pickle.UnpicklingError)


def _usage() -> str:
    lines = ["usage: hands <verb> [options]      (hands <verb> --help for its options)", "", "verbs:"]
    for verb, (_, text) in VERBS.items():
        lines.append(f"  {verb:<16} {text}")
        for sub, (_, sub_text, _) in SUB_VERBS.get(verb, {}).items():
            lines.append(f"    {sub:<14} {sub_text}")
    lines += ["", "Files (weights, the landmarker bundle, metric weights, caches) live under $HANDS_HOME; see README."]
    return "\n".join(lines)


def _sub_usage(verb: str) -> str:
    table = SUB_VERBS[verb]
    subs = "\n".join(f"  {name:<14} {text}" for name, (_, text, _) in table.items())
    return f"usage: hands {verb} <{'|'.join(table)}> [options]      (hands {verb} <...> --help for its options)\n\n{subs}"


def resolve(argv: list[str]) -> tuple[str, Callable[[list[str]], object], list[str]]:
    """(name, main function, its arguments) of a command line `verb [sub-verb] args...`; SystemExit with the
    usage when the verb is unknown."""
    if not argv or argv[0] in ("-h", "--help"):
        raise SystemExit(_usage() + "\n\nerror: give a verb")
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        raise SystemExit(f"hands: unknown verb {verb!r}; one of {', '.join(VERBS)}")
    if verb in SUB_VERBS:
        table = SUB_VERBS[verb]
        if verb == "avatar" and rest and rest[0].startswith("-") and rest[0] not in ("-h", "--help"):
            rest = ["create", *rest]  # create.py's command line: flags straight after the verb
        if not rest or rest[0] in ("-h", "--help"):
            raise SystemExit(_sub_usage(verb) + "\n\nerror: give one of them")
        if rest[0] not in table:
            raise SystemExit(f"hands {verb}: unknown {rest[0]!r}; one of {', '.join(table)}")
        module, _, before = table[rest[0]]
        name, rest = f"{verb} {rest[0]}", [*before, *rest[1:]]
    else:
        module, name = VERBS[verb][0], verb
    return name, importlib.import_module(module).main, rest


def main(argv: list[str] | None = None) -> object:
    """`hands <verb> ...`: run the verb; a bad input ends in one line `hands <verb>: <what is wrong>`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(_usage())
        return 0
    if len(argv) >= 2 and argv[0] in SUB_VERBS and argv[1] in ("-h", "--help"):
        print(_sub_usage(argv[0]))
        return 0
    name, function, rest = resolve(argv)
    try:
        return function(rest)
    except USER_ERRORS as error:
        raise SystemExit(f"hands {name}: {error}") from None


def console() -> int:
    """The `hands` console script: `main` with exit status 0 on success (a verb's return value is for callers
    in Python; `sys.exit` would print it and exit 1)."""
    main()
    return 0


def run_script(verb: str) -> None:
    """A root script (`python create.py ...`): the verb with the script's arguments and the same error lines."""
    main([verb, *sys.argv[1:]])
