"""A constant-velocity Kalman filter on boxes (centre x, centre y, width, height and their velocities), as SORT and
ByteTrack use it: the noise scales with the box's size, so small and large objects are predicted alike."""

from __future__ import annotations

import numpy as np

POSITION_NOISE = 1 / 20
VELOCITY_NOISE = 1 / 160


def box_to_state(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = np.asarray(box, float)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)])


def state_to_box(state: np.ndarray) -> np.ndarray:
    cx, cy, w, h = state[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalman:
    """One track's box: :meth:`predict` a frame ahead, :meth:`update` with a measured XYXY box."""

    def __init__(self, box: np.ndarray) -> None:
        measured = box_to_state(box)
        self.mean = np.concatenate([measured, np.zeros(4)])
        size = np.array([measured[2], measured[3], measured[2], measured[3]])
        self.covariance = np.diag(np.concatenate([2 * POSITION_NOISE * size, 10 * VELOCITY_NOISE * size]) ** 2)
        self.motion = np.eye(8)
        self.motion[:4, 4:] = np.eye(4)

    def _size(self) -> np.ndarray:
        w, h = max(self.mean[2], 1e-3), max(self.mean[3], 1e-3)
        return np.array([w, h, w, h])

    def predict(self) -> np.ndarray:
        """Move one frame ahead; returns the predicted XYXY box."""
        size = self._size()
        noise = np.diag(np.concatenate([POSITION_NOISE * size, VELOCITY_NOISE * size]) ** 2)
        self.mean = self.motion @ self.mean
        self.covariance = self.motion @ self.covariance @ self.motion.T + noise
        return self.box

    def update(self, box: np.ndarray) -> None:
        projection = np.eye(4, 8)
        noise = np.diag((POSITION_NOISE * self._size()) ** 2)
        innovation_cov = projection @ self.covariance @ projection.T + noise
        gain = np.linalg.solve(innovation_cov, projection @ self.covariance).T
        self.mean = self.mean + gain @ (box_to_state(box) - projection @ self.mean)
        self.covariance = self.covariance - gain @ innovation_cov @ gain.T

    @property
    def box(self) -> np.ndarray:
        return state_to_box(self.mean)
