"""Train a model of this project (ACR, AttentionHand's ControlNet, OHTA's prior).

The original's command line, kept: this is `hands train` with the same flags (see `hands train --help`).
"""

from hands.cli.train import main  # noqa: F401  (what tests and users import)

if __name__ == "__main__":
    from hands.cli import run_script

    run_script("train")
