"""Photo -> AttentionHand's modalities (the package's `hands prepare modalities`; kept for the scripts' users)."""

from hands.cli.prepare_modalities import main

if __name__ == "__main__":
    main()
