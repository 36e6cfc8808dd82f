"""A synthetic hand dataset in the InterHand2.6M format (the package's `hands synth`; kept for the scripts' users)."""

from hands.cli.synth import main

if __name__ == "__main__":
    main()
