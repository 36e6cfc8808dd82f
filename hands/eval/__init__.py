"""Evaluation: 3D hand metrics and the InterNet / IntagHand protocols, image metrics (PSNR, SSIM, LPIPS, FID, KID)."""
