"""Models made ready to deploy: ``torch.export`` and ONNX export (semantic runs and Segment Anything), the
onnxruntime backend, and inference-time rewrites that keep outputs the same (BatchNorm folding)."""
