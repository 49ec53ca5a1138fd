"""Tracking: detections joined into tracks (ByteTrack's association on masks, a Kalman filter on boxes), a trained
run applied to a whole video (``omniseg track RUN VIDEO``), and what tracking writes (label PNGs, the overlay MP4)."""
