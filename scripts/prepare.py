"""Method inputs from an InterHand-format dataset (the package's `hands prepare acr|ohta|attentionhand`; kept for the scripts' users)."""

from hands.cli.prepare_interhand import main

if __name__ == "__main__":
    main()
