"""ACR under the InterNet and IntagHand protocols (the package's `hands eval acr`; kept for the scripts' users)."""

from hands.cli.eval_acr import main

if __name__ == "__main__":
    main()
