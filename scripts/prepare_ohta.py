"""Photo -> OHTA's one-shot input (the package's `hands prepare ohta_input`; kept for the scripts' users)."""

from hands.cli.prepare_ohta_input import main

if __name__ == "__main__":
    main()
