"""The fit front end against labelled photos (the package's `hands eval fit`; kept for the scripts' users)."""

from hands.cli.eval_fit import main

if __name__ == "__main__":
    main()
