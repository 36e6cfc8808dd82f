"""ACR (CVPR'23): attention-collaboration regression of zero, one or two hands from an image."""
