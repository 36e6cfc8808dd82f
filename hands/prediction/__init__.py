"""The shared result of every hand reconstruction method: `HandPrediction`, the `HandPredictor` protocol, the
temporal smoother for predictions and the frame runner that drives any predictor over images, folders, videos
and webcams. Imports no method."""

from hands.prediction.types import SIDES, HandPrediction, HandPredictor, Side, load_predictions, save_predictions

__all__ = ["SIDES", "HandPrediction", "HandPredictor", "Side", "load_predictions", "save_predictions"]
