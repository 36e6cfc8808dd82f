"""Demo: ACR on your images, videos or webcam (--demo_mode image|folder|video|webcam, -t), MediaPipe + MANO fitting
on any photo (--demo_mode fit), or the hand model in a few poses (no weights needed).

The original's command line, kept: this is `hands demo` with the same flags (see `hands demo --help`).
"""

from hands.cli.demo import demo_poses, main  # noqa: F401  (demo_poses: the poses the default mode renders)

if __name__ == "__main__":
    from hands.cli import run_script

    run_script("demo")
