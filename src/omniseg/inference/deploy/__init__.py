"""Models made ready to deploy: ``torch.export`` and ONNX export of semantic runs (Segment Anything's is in
``promptable``), the onnxruntime backend, and inference-time rewrites that keep outputs the same (BatchNorm folding)."""
