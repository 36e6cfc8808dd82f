"""OHTA: one-shot avatar creation from one image, and the avatar tools.

The original's command line, kept: this is `hands avatar` with the same flags (see `hands avatar --help`).
"""

from hands.cli.avatar import main  # noqa: F401  (what tests and users import)

if __name__ == "__main__":
    from hands.cli import run_script

    run_script("avatar")
