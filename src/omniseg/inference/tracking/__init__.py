"""Tracking: detections joined into tracks (ByteTrack's association on masks, a Kalman filter on boxes) or carried by
SAM 2's memory, a trained run applied to a whole video (``omniseg track RUN VIDEO``), prompted objects followed by SAM 2
(``omniseg track VIDEO --model SAM2 --point ...``), what tracking writes (label PNGs, the overlay MP4) and its edits."""
