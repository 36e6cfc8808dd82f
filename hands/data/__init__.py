"""Datasets: InterHand2.6M, the synthetic InterHand-format generator, crops and augmentation."""
