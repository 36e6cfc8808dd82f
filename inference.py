"""AttentionHand inference: hand images from mesh renders and prompts.

The original's command line, kept: this is `hands generate` with the same flags (see `hands generate --help`).
"""

from hands.cli.generate import main  # noqa: F401  (what tests and users import)

if __name__ == "__main__":
    from hands.cli import run_script

    run_script("generate")
