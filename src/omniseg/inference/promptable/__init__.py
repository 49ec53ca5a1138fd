"""Promptable segmentation: the prompt predictor (an image encoded once, masks for points, boxes and masks), the
automatic mask generator, prompting or labelling files (``omniseg prompt`` / ``omniseg autolabel``) and SAM's ONNX
export."""
