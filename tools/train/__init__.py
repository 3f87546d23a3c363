"""Training pipeline for the five INT8 TFLite models (needs the `train` extra: TensorFlow)."""
