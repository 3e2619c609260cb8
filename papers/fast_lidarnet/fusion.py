"""Hybrid Evidential Fusion, and the two policies it is compared with.

What is known of the paper's method (abstract, contribution list, a reading note of its
introduction): the network predicts the current control and future controls with their
uncertainty in one forward pass; predictions of neighbouring frames are fused adaptively using
the learned uncertainties, after odometry correction. The equations could not be read, so this
is our design, each choice stated:

* **Candidates for the control now.** Frame ``t`` predicts curvatures ``gamma_t[0..K]``; it is
  also a planned path (the bicycle model driven by them from the pose of frame ``t``). Frame
  ``t - j`` (``j <= K``) forecast ``gamma_{t-j}[j]`` for this step.
* **Odometry correction.** The car may not be where frame ``t - j``'s path expected it after
  ``j`` steps: odometry gives the actual pose in that frame, and the forecast is corrected by the
  linearised pure-pursuit feedback on the deviation: ``c = gamma - g_lat * dy - g_head * dyaw``
  (``dy``, ``dyaw``: lateral and heading offset from the forecast pose; ``g_lat = 2 / L^2``,
  ``g_head = 2 / L`` for a look-ahead ``L``).
* **Fusion.** Each candidate's variance is its predicted uncertainty of that step (epistemic by
  default), inflated by ``1 + age_inflation * j``; the control is the inverse-variance weighted
  mean. With equal variances it is the plain average.
* **Fall-back.** A candidate whose variance exceeds the ``quantile`` of the validation frames'
  (per step) is left out; a frame the sensor did not deliver (a repeated scan) gives no new
  candidate. With no candidate left, the car follows the last confident frame's path (its
  curvature forecast, beyond the horizon its last one, corrected by odometry as above).

``none`` uses the current frame's ``gamma_t[0]`` alone; ``average`` takes every candidate with
equal weight and no fall-back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from common.driving import VehicleConfig, compose_pose, relative_pose, step
from papers.fast_lidarnet.config import FusionConfig


@dataclass
class Forecast:
    """One frame's prediction: curvatures and variances ``(K + 1,)``, its path's poses
    ``(K + 1, 3)`` in its own frame, and the car's current pose in that frame (odometry)."""

    gamma: np.ndarray
    var: np.ndarray
    path: np.ndarray
    here: np.ndarray = field(default_factory=lambda: np.zeros(3))
    age: int = 0
    confident: bool = True


def forecast_path(gamma: np.ndarray, vehicle: VehicleConfig) -> np.ndarray:
    """Poses ``(K + 1, 3)`` reached by driving curvature ``gamma[j]`` during step ``j`` from the
    origin (pose 0 is the origin)."""
    poses = [np.zeros(3)]
    for k in gamma[:-1]:
        poses.append(np.asarray(step(poses[-1], float(k), vehicle), dtype=np.float64))
    return np.stack(poses)


def fuse(values: np.ndarray, variances: np.ndarray) -> float:
    """Inverse-variance weighted mean (the plain mean for equal variances)."""
    w = 1.0 / np.maximum(variances, 1e-12)
    return float((w * values).sum() / w.sum())


class FusionPolicy:
    """A trained network as a closed-loop policy: ``policy(obs) -> curvature``.

    After every call, ``last`` holds what the report plots and scores (the current frame's
    prediction and uncertainties, the fused command, how many candidates were used).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        mode: str,
        fusion: FusionConfig,
        thresholds: np.ndarray,
        vehicle: VehicleConfig,
        horizon: int,
    ) -> None:
        if mode not in ("none", "average", "evidential"):
            raise ValueError(f"fusion mode: none, average or evidential, got {mode!r}")
        self.model, self.mode, self.cfg = model.eval(), mode, fusion
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.vehicle, self.horizon = vehicle, horizon
        self.reset()

    def reset(self) -> None:
        """Forget every forecast (after a takeover the car was moved by the safety driver)."""
        self.buffer: deque[Forecast] = deque(maxlen=self.horizon + 1)
        self.fallback: Forecast | None = None
        self.previous_points: np.ndarray | None = None
        self.last: dict[str, float] = {}

    def _variance(self, nu: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        aleatoric = beta / (alpha - 1)
        epistemic = aleatoric / nu
        kind = self.cfg.uncertainty
        return {"epistemic": epistemic, "aleatoric": aleatoric,
                "total": epistemic + aleatoric}[kind]  # fmt: skip

    @torch.no_grad()
    def predict(self, points: np.ndarray, map_raster: np.ndarray) -> dict[str, np.ndarray]:
        pts = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        maps = torch.from_numpy(np.ascontiguousarray(map_raster, dtype=np.float32))[None]
        p = self.model([pts], maps)
        return {k: getattr(p, k)[0].double().numpy() for k in ("gamma", "nu", "alpha", "beta")}

    def _corrected(self, f: Forecast) -> float:
        """Forecast ``f``'s curvature for now, corrected for the deviation from its path."""
        j = f.age
        if j < len(f.gamma):
            gamma, expected = f.gamma[j], f.path[j]
        else:  # beyond the horizon: the path continues at the last forecast curvature
            gamma = f.gamma[-1]
            expected = f.path[-1]
            for _ in range(j - len(f.gamma) + 1):
                expected = np.asarray(step(expected, float(gamma), self.vehicle), dtype=np.float64)
        _, dy, dyaw = relative_pose(expected, f.here)
        return float(gamma - self.cfg.gain_lateral * dy - self.cfg.gain_heading * dyaw)

    def __call__(self, obs) -> float:  # obs: common.driving.Observation
        # Age every forecast by one step and move the car within its frame by the odometry.
        items = list(self.buffer)
        if self.fallback is not None and all(f is not self.fallback for f in items):
            items.append(self.fallback)  # the fall-back may have left the buffer already
        for f in items:
            f.here = compose_pose(f.here, np.asarray(obs.odometry, dtype=np.float64))
            f.age += 1
        stale = self.previous_points is not None and np.array_equal(
            obs.points, self.previous_points
        )
        self.previous_points = obs.points
        p = self.predict(obs.points, obs.map)
        var = self._variance(p["nu"], p["alpha"], p["beta"])
        confident = bool(var[0] <= self.thresholds[0])
        aleatoric = p["beta"] / (p["alpha"] - 1)
        self.last = {"gamma": float(p["gamma"][0]), "epistemic": float(aleatoric[0] / p["nu"][0]),
                     "aleatoric": float(aleatoric[0]), "stale": float(stale),
                     "confident": float(confident)}  # fmt: skip
        if self.mode == "none":
            self.last.update(command=self.last["gamma"], candidates=1.0)
            return self.last["gamma"]
        if not stale:
            f = Forecast(p["gamma"], var, forecast_path(p["gamma"], self.vehicle),
                         confident=confident)  # fmt: skip
            self.buffer.append(f)
            if confident:
                self.fallback = f
        live = [f for f in self.buffer if f.age <= self.horizon]
        if self.mode == "average":
            values = (
                np.array([self._corrected(f) for f in live]) if live else np.array([p["gamma"][0]])
            )
            command = float(values.mean())
            self.last.update(command=command, candidates=float(len(values)))
            return command
        keep = [f for f in live if f.var[f.age] <= self.thresholds[f.age]]
        if keep:
            values = np.array([self._corrected(f) for f in keep])
            variances = np.array(
                [f.var[f.age] * (1 + self.cfg.age_inflation * f.age) for f in keep]
            )
            command = fuse(values, variances)
        elif self.fallback is not None:
            command = self._corrected(self.fallback)
        else:
            command = float(p["gamma"][0])
        self.last.update(command=command, candidates=float(len(keep)))
        return command
