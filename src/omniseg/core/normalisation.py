"""Normalisation statistics shared by the transforms, the detectors and prediction."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # of 0..1 RGB values
IMAGENET_STD = (0.229, 0.224, 0.225)
