"""Build the HandLandmarker bundle (the package's `hands prepare landmarker`; kept for the scripts' users)."""

from hands.cli.setup_landmarker import main

if __name__ == "__main__":
    main()
