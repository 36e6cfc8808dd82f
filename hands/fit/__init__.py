"""In-the-wild front end: MediaPipe hand keypoints and MANO fitting from any photo or video."""
