"""Images larger than one forward pass: sliding windows (2D and 3D), rasters read band by band and written row by
row, test-time augmentation, and detections of tiles merged at the seams."""
