"""Procedural road networks with a route to drive and scenery for the LiDAR to see.

A world is a jittered grid of intersections joined by gently bending two-lane roads (right-hand
traffic), a route through it (the centre line of the right-hand lane along a random walk that goes
straight or turns left or right at intersections, with circular-arc turns), and scenery as
primitives the ray caster understands: oriented boxes (buildings set back behind the kerbs,
parked cars on the road shoulders, 15 cm kerbs along both road edges) and vertical cylinders (tree
trunks and crowns, poles). Nothing is placed in the lane the route drives.

Cross-section of a road, from its centre line outwards on each side: one lane (``lane_width``),
a parking shoulder (``shoulder_m``), the kerb, then the sidewalk with trees and poles; buildings
stand further back. World frame: metres, x east, y north, z up, the ground is z = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from common.config import ConfigError, bounds
from common.driving._validate import check_bounds

ROUTE_SPACING_M = 0.5
"""Distance between consecutive route samples (m)."""

ROUTE_TAIL_M = 60.0
"""The route continues this far past :attr:`World.end_s`, so that look-ahead points, the expert's
future labels and the map ahead are defined when a drive ends."""

BOX_KINDS = ("building", "parked_car", "kerb")
CYLINDER_KINDS = ("trunk_or_pole", "crown")

# Scenery dimensions (m): typical urban values, not parameters worth tuning.
_KERB_PIECE_M, _KERB_WIDTH, _KERB_HEIGHT = 4.0, 0.3, 0.15
_CAR_SIZE = (4.5, 1.8, 1.5)
_SIDEWALK_M = 3.0


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the procedural road network, its scenery and the route.

    The network is a ``grid x grid`` lattice of intersections ``block_m`` apart, each moved by up
    to ``jitter_m``; every road segment bends sideways by a sum of two sine waves whose amplitude
    is up to ``curvy`` times its length. Scenery densities are expected objects per 100 m of each
    road side (Poisson counts, then thinned where objects would overlap or stand on a road).
    """

    grid: int = field(default=4, metadata=bounds(ge=2, le=16))
    block_m: float = field(default=70.0, metadata=bounds(ge=30))
    jitter_m: float = field(default=6.0, metadata=bounds(ge=0))
    lane_width: float = field(default=3.5, metadata=bounds(ge=2.5, le=5))
    shoulder_m: float = field(default=2.5, metadata=bounds(ge=0, le=6))
    turn_radius_m: float = field(default=12.0, metadata=bounds(ge=4))
    curvy: float = field(default=0.05, metadata=bounds(ge=0, le=0.15))
    buildings_per_100m: float = field(default=4.0, metadata=bounds(ge=0, le=20))
    trees_per_100m: float = field(default=5.0, metadata=bounds(ge=0, le=40))
    poles_per_100m: float = field(default=2.0, metadata=bounds(ge=0, le=40))
    parked_cars_per_100m: float = field(default=3.0, metadata=bounds(ge=0, le=20))
    kerbs: bool = True
    route_length_m: float = field(default=600.0, metadata=bounds(gt=0))

    def __post_init__(self) -> None:
        check_bounds(self)
        # The turn arcs and the kerb gaps at both ends of a segment must fit inside it.
        if self.turn_radius_m > self.block_m / 5:
            raise ConfigError(
                f"WorldConfig.turn_radius_m: {self.turn_radius_m} is too large for block_m "
                f"{self.block_m}; allowed: <= block_m / 5"
            )
        if self.jitter_m > self.block_m / 6:
            raise ConfigError(
                f"WorldConfig.jitter_m: {self.jitter_m} is too large for block_m {self.block_m}; "
                "allowed: <= block_m / 6"
            )


@dataclass(eq=False)  # arrays: compare worlds by identity
class World:
    """A built world (see the module docstring for frames and units).

    Attributes:
        roads: road centre polylines, each ``(n, 2)``.
        route: ``(R, 2)`` centre line of the right-hand lane along the route, sampled every
            :data:`ROUTE_SPACING_M` metres.
        route_s: ``(R,)`` arc length of each route sample (m).
        route_heading: ``(R,)`` heading of the route at each sample (rad, in ``[-pi, pi)``).
        lane_width: width of one lane (m); the route is the centre of its lane.
        boxes: ``(M, 7)`` oriented boxes ``cx, cy, z_bottom, length, width, height, yaw``
            (``length`` along ``yaw``).
        cylinders: ``(K, 5)`` vertical cylinders ``cx, cy, radius, z_bottom, height``.
        seed: the seed it was built from.
        end_s: where a drive ends (the configured route length); the route goes on for
            :data:`ROUTE_TAIL_M` more metres.
        road_half_width: from a road's centre line to its kerb (m).
        box_kind: ``(M,)`` index into :data:`BOX_KINDS`.
        cylinder_kind: ``(K,)`` index into :data:`CYLINDER_KINDS`.
    """

    roads: list[np.ndarray]
    route: np.ndarray
    route_s: np.ndarray
    route_heading: np.ndarray
    lane_width: float
    boxes: np.ndarray
    cylinders: np.ndarray
    seed: int
    end_s: float = math.inf
    road_half_width: float = 0.0
    box_kind: np.ndarray | None = None
    cylinder_kind: np.ndarray | None = None
    # Derived arrays the ray caster and the rasteriser reuse (filled on first use).
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.box_kind is None:
            self.box_kind = np.zeros(len(self.boxes), dtype=np.int8)
        if self.cylinder_kind is None:
            self.cylinder_kind = np.zeros(len(self.cylinders), dtype=np.int8)
        self.end_s = min(float(self.end_s), float(self.route_s[-1]))
        # Continuous heading, so interpolating between samples never crosses the +-pi seam.
        self._heading_unwrapped = np.unwrap(self.route_heading)
        self._seg = np.diff(self.route, axis=0)  # (R-1, 2)
        self._seg_len2 = np.maximum((self._seg**2).sum(1), 1e-12)

    @property
    def length(self) -> float:
        """Total length of the route polyline (m), tail included."""
        return float(self.route_s[-1])

    @property
    def spacing(self) -> float:
        """Distance between route samples (m)."""
        return float(self.route_s[1] - self.route_s[0])

    def index_of(self, s: float) -> int:
        """The route sample at (or just before) arc length ``s``: a hint for :meth:`project`."""
        return int(np.clip(s / self.spacing, 0, len(self.route) - 1))

    def _nearest(self, p: np.ndarray, lo: int, hi: int) -> tuple[int, float]:
        a = self.route[lo:hi]
        d = self._seg[lo:hi]
        rel = p - a
        t = np.clip((rel * d).sum(1) / self._seg_len2[lo:hi], 0.0, 1.0)
        e = rel - t[:, None] * d
        i = int(np.argmin((e**2).sum(1)))
        return lo + i, float(t[i])

    def project(
        self, xy: np.ndarray, hint: int | None = None, window_m: float = 30.0
    ) -> tuple[float, float, float]:
        """Nearest point of the route to ``xy``.

        Args:
            xy: a position (or a pose; only its first two entries are read).
            hint: a route sample index near the answer (the previous step's
                ``index_of(s)``): only a window of ``window_m`` metres around it is searched, so
                closed-loop projection is O(window), and a route that crosses itself at an
                intersection resolves to the right pass. The window widens when the nearest
                point is at its edge. Without a hint the whole route is searched.
            window_m: half-width of the search window ahead (a third of it behind).

        Returns:
            ``(lateral, s, heading)``: signed offset from the route (m, left of the direction of
            travel positive), the arc length of the nearest point (m) and the route heading
            there (rad).
        """
        p = np.asarray(xy, dtype=np.float64)[:2]
        n_seg = len(self._seg)
        if hint is None:
            i, t = self._nearest(p, 0, n_seg)
        else:
            ahead = max(int(window_m / self.spacing), 4)
            behind = max(ahead // 3, 2)
            while True:
                lo, hi = max(int(hint) - behind, 0), min(int(hint) + ahead, n_seg)
                i, t = self._nearest(p, lo, hi)
                at_edge = (i == lo and lo > 0) or (i == hi - 1 and hi < n_seg)
                if not at_edge or (lo == 0 and hi == n_seg):
                    break
                ahead, behind = ahead * 4, behind * 4
        d = self._seg[i]
        seg_len = math.sqrt(self._seg_len2[i])
        rel = p - self.route[i]
        lateral = (d[0] * rel[1] - d[1] * rel[0]) / seg_len
        s = float(self.route_s[i] + t * seg_len)
        h = self._heading_unwrapped[i] + t * (
            self._heading_unwrapped[i + 1] - self._heading_unwrapped[i]
        )
        return float(lateral), s, float((h + math.pi) % (2 * math.pi) - math.pi)

    def pose_at(self, s: float) -> tuple[float, float, float]:
        """The pose ``(x, y, heading)`` on the route at arc length ``s`` (clipped to the route)."""
        f = float(np.clip(s, 0.0, self.length)) / self.spacing
        i = min(int(f), len(self.route) - 2)
        t = f - i
        x, y = self.route[i] + t * (self.route[i + 1] - self.route[i])
        h = self._heading_unwrapped[i] + t * (
            self._heading_unwrapped[i + 1] - self._heading_unwrapped[i]
        )
        return float(x), float(y), float((h + math.pi) % (2 * math.pi) - math.pi)


# ----------------------------------------------------------------------------- polylines


def _arclength(p: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])


def _at(p: np.ndarray, s_cum: np.ndarray, s: float) -> np.ndarray:
    return np.array([np.interp(s, s_cum, p[:, 0]), np.interp(s, s_cum, p[:, 1])])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.hypot(v[0], v[1])), 1e-12)


def _tangent_at(p: np.ndarray, s_cum: np.ndarray, s: float, h: float = 1.0) -> np.ndarray:
    return _unit(_at(p, s_cum, min(s + h, s_cum[-1])) - _at(p, s_cum, max(s - h, 0.0)))


def _sub(p: np.ndarray, s_cum: np.ndarray, s0: float, s1: float) -> np.ndarray:
    inner = p[(s_cum > s0) & (s_cum < s1)]
    return np.vstack([_at(p, s_cum, s0), inner, _at(p, s_cum, s1)])


def _tangents(p: np.ndarray) -> np.ndarray:
    t = np.gradient(p, axis=0)
    return t / np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-12)[:, None]


def _resample(p: np.ndarray, ds: float) -> np.ndarray:
    keep = np.concatenate([[True], np.hypot(*np.diff(p, axis=0).T) > 1e-9])
    p = p[keep]
    s_cum = _arclength(p)
    s = np.arange(int(s_cum[-1] / ds) + 1) * ds
    return np.stack([np.interp(s, s_cum, p[:, 0]), np.interp(s, s_cum, p[:, 1])], axis=1)


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _bezier_turn(a: np.ndarray, ta: np.ndarray, b: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """A cubic Bezier from ``a`` (heading ``ta``) to ``b`` (heading ``tb``), its handles sized so
    that between two straight lines it follows the circular arc within 0.03% of the radius."""
    turn = abs(math.atan2(_cross(ta, tb), float(ta @ tb)))
    chord = float(np.hypot(*(b - a)))
    if turn < 1e-6:
        handle = chord / 3
    else:
        radius = chord / (2 * math.sin(turn / 2))
        handle = 4 / 3 * math.tan(turn / 4) * radius
    u = np.linspace(0.0, 1.0, max(8, int(chord / 0.1)))[:, None]
    p1, p2 = a + handle * ta, b - handle * tb
    return (1 - u) ** 3 * a + 3 * (1 - u) ** 2 * u * p1 + 3 * (1 - u) * u**2 * p2 + u**3 * b


# ----------------------------------------------------------------------------- network


def _network(
    config: WorldConfig, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int]], list[np.ndarray]]:
    """Jittered grid nodes ``(G*G, 2)``, edges ``[(a, b)]`` and their centre polylines."""
    g = config.grid
    ij = np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="ij"), -1).reshape(-1, 2)
    nodes = ij * config.block_m + rng.uniform(-config.jitter_m, config.jitter_m, size=(g * g, 2))
    edges = []
    for i in range(g):
        for j in range(g):
            if i + 1 < g:
                edges.append((i * g + j, (i + 1) * g + j))
            if j + 1 < g:
                edges.append((i * g + j, i * g + j + 1))
    polylines = []
    for a, b in edges:
        chord = nodes[b] - nodes[a]
        length = float(np.hypot(*chord))
        u = chord / length
        n = np.array([-u[1], u[0]])
        t = np.linspace(0.0, 1.0, math.ceil(length / ROUTE_SPACING_M) + 1)[:, None]
        amp1, amp2 = rng.uniform(-1, 1, size=2) * config.curvy * length * np.array([1.0, 0.4])
        # Zero offset at both ends: every segment still meets its intersections.
        offset = amp1 * np.sin(np.pi * t) + amp2 * np.sin(2 * np.pi * t)
        polylines.append(nodes[a] + t * chord + offset * n)
    return nodes, edges, polylines


def _random_walk(
    nodes: np.ndarray,
    edges: list[tuple[int, int]],
    polylines: list[np.ndarray],
    needed_m: float,
    rng: np.random.Generator,
) -> list[tuple[int, bool]]:
    """Edges of a random path ``[(edge, reversed)]`` at least ``needed_m`` long: no U-turns,
    straight / left / right chosen 0.4 / 0.3 / 0.3 where possible, unused roads preferred."""
    adjacency: dict[int, list[tuple[int, int]]] = {}
    for e, (a, b) in enumerate(edges):
        adjacency.setdefault(a, []).append((b, e))
        adjacency.setdefault(b, []).append((a, e))
    lengths = [float(_arclength(p)[-1]) for p in polylines]
    prev = int(rng.integers(len(nodes)))
    nxt, e = adjacency[prev][int(rng.integers(len(adjacency[prev])))]
    path = [(e, edges[e][0] != prev)]
    used = {e}
    total = lengths[e]
    while total < needed_m:
        d_in = _unit(nodes[nxt] - nodes[prev])
        options, weights = [], []
        for w, e2 in adjacency[nxt]:
            if w == prev:
                continue
            d_out = _unit(nodes[w] - nodes[nxt])
            angle = math.atan2(_cross(d_in, d_out), float(d_in @ d_out))
            weight = 0.4 if abs(angle) < math.pi / 4 else 0.3
            options.append((w, e2))
            weights.append(weight * (0.05 if e2 in used else 1.0))
        if not options:  # a dead end (not in a full grid): turn around
            options, weights = [(prev, e)], [1.0]
        p = np.array(weights) / sum(weights)
        w, e = options[int(rng.choice(len(options), p=p))]
        path.append((e, edges[e][0] != nxt))
        used.add(e)
        total += lengths[e]
        prev, nxt = nxt, w
    return path


def _route_line(config: WorldConfig, lanes: list[np.ndarray]) -> np.ndarray:
    """Join the lane lines of consecutive segments with circular-arc turns (as Bezier curves)."""
    r = config.turn_radius_m
    cut_start = [0.0] * len(lanes)
    cut_end = [0.0] * len(lanes)
    cum = [_arclength(p) for p in lanes]
    for k in range(len(lanes) - 1):
        lin, lout = lanes[k], lanes[k + 1]
        len_in, len_out = cum[k][-1], cum[k + 1][-1]
        d1 = _tangent_at(lin, cum[k], len_in, 2.0)
        d2 = _tangent_at(lout, cum[k + 1], 0.0, 2.0)
        p1, p2 = lin[-1], lout[0]
        sin_turn = _cross(d1, d2)
        turn = abs(math.atan2(sin_turn, float(d1 @ d2)))
        if abs(sin_turn) < 0.05:  # nearly straight on: lines nearly parallel
            a = b = 0.0
            tangent = 3.0
        else:
            delta = p2 - p1
            a = _cross(delta, d2) / sin_turn  # the two lane lines meet at p1 + a d1 = p2 + b d2
            b = _cross(delta, d1) / sin_turn
            tangent = max(r * math.tan(turn / 2), 3.0)
        # Where the arc leaves the incoming lane line and joins the outgoing one; kept inside
        # the segments (a tight jittered corner then turns a little tighter than turn_radius_m).
        cut_end[k] = float(np.clip(tangent - a, 0.5, 0.4 * len_in))
        cut_start[k + 1] = float(np.clip(tangent + b, 0.5, 0.4 * len_out))
    pieces = []
    for k, lane in enumerate(lanes):
        pieces.append(_sub(lane, cum[k], cut_start[k], cum[k][-1] - cut_end[k]))
        if k < len(lanes) - 1:
            s_a = cum[k][-1] - cut_end[k]
            s_b = cut_start[k + 1]
            a_pt, b_pt = _at(lane, cum[k], s_a), _at(lanes[k + 1], cum[k + 1], s_b)
            ta = _tangent_at(lane, cum[k], s_a, 0.5)
            tb = _tangent_at(lanes[k + 1], cum[k + 1], s_b, 0.5)
            pieces.append(_bezier_turn(a_pt, ta, b_pt, tb))
    return np.vstack(pieces)


def _build_route(
    config: WorldConfig,
    nodes: np.ndarray,
    edges: list[tuple[int, int]],
    polylines: list[np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """The route polyline ``(R, 2)``: ``route_length_m`` plus the tail, every 0.5 m."""
    needed = config.route_length_m + ROUTE_TAIL_M
    extra = 1.3
    while True:
        path = _random_walk(nodes, edges, polylines, extra * needed + 100.0, rng)
        lanes = []
        for e, rev in path:
            centre = polylines[e][::-1] if rev else polylines[e]
            t = _tangents(centre)
            right = np.stack([t[:, 1], -t[:, 0]], axis=1)
            lanes.append(centre + 0.5 * config.lane_width * right)
        line = _resample(_route_line(config, lanes), ROUTE_SPACING_M)
        if (len(line) - 1) * ROUTE_SPACING_M >= needed:
            n = round(needed / ROUTE_SPACING_M) + 1
            return line[:n]
        extra *= 1.5  # many sharp turns ate the margin: walk further


# ----------------------------------------------------------------------------- scenery


def _positions(
    rng: np.random.Generator, rate_per_100m: float, s0: float, s1: float, min_gap: float
) -> list[float]:
    """Sorted Poisson positions on ``[s0, s1]``, thinned to at least ``min_gap`` apart."""
    if s1 <= s0 or rate_per_100m <= 0:
        return []
    s = np.sort(rng.uniform(s0, s1, size=rng.poisson(rate_per_100m * (s1 - s0) / 100.0)))
    kept: list[float] = []
    for v in s:
        if not kept or v - kept[-1] >= min_gap:
            kept.append(float(v))
    return kept


def _scenery(
    config: WorldConfig, polylines: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw scenery along every road (before the clearance checks): boxes, kinds, cylinders,
    kinds."""
    w, kerb = config.lane_width, config.lane_width + config.shoulder_m
    boxes, box_kind, cyls, cyl_kind = [], [], [], []
    for poly in polylines:
        cum = _arclength(poly)
        length = cum[-1]

        def frame(s, poly=poly, cum=cum):
            t = _tangent_at(poly, cum, s, 1.0)
            return _at(poly, cum, s), math.atan2(t[1], t[0]), np.array([-t[1], t[0]])

        for side in (1.0, -1.0):
            gap = kerb + 4.0  # keep intersections open
            # Buildings: frontage along the road, set back behind the sidewalk.
            for s in _positions(rng, config.buildings_per_100m, gap + 4, length - gap - 4, 10.0):
                front, depth = rng.uniform(8, 16), rng.uniform(8, 14)
                setback = kerb + _SIDEWALK_M + rng.uniform(0.5, 3.0)
                p, yaw, n = frame(s)
                c = p + side * (setback + depth / 2) * n
                boxes.append([c[0], c[1], 0.0, front, depth, rng.uniform(4, 18), yaw])
                box_kind.append(0)
            if config.shoulder_m >= 2.0:  # room for a parked car outside the lane
                for s in _positions(rng, config.parked_cars_per_100m, gap, length - gap, 6.5):
                    p, yaw, n = frame(s)
                    c = p + side * (w + config.shoulder_m / 2) * n
                    yaw += math.pi * int(rng.integers(2)) + rng.normal(0, math.radians(2))
                    boxes.append([c[0], c[1], 0.0, *_CAR_SIZE, yaw])
                    box_kind.append(1)
            if config.kerbs:
                kerb_gap = config.turn_radius_m + 0.5 * kerb
                edges = np.arange(kerb_gap, length - kerb_gap, _KERB_PIECE_M)
                for s0 in edges:
                    s1 = min(s0 + _KERB_PIECE_M, length - kerb_gap)
                    if s1 - s0 < 0.5:
                        continue
                    p, yaw, n = frame((s0 + s1) / 2)
                    c = p + side * (kerb + _KERB_WIDTH / 2) * n
                    boxes.append([c[0], c[1], 0.0, s1 - s0, _KERB_WIDTH, _KERB_HEIGHT, yaw])
                    box_kind.append(2)
            for s in _positions(rng, config.trees_per_100m, gap, length - gap, 5.0):
                p, _, n = frame(s)
                c = p + side * (kerb + 1.5 + rng.uniform(0, 1.0)) * n
                trunk_h = rng.uniform(2.0, 3.0)
                cyls.append([c[0], c[1], rng.uniform(0.15, 0.3), 0.0, trunk_h])
                cyls.append([c[0], c[1], rng.uniform(1.0, 2.0), trunk_h - 0.3, rng.uniform(2, 4)])
                cyl_kind += [0, 1]
            for s in _positions(rng, config.poles_per_100m, gap, length - gap, 5.0):
                p, _, n = frame(s)
                c = p + side * (kerb + 0.6) * n
                cyls.append([c[0], c[1], 0.1, 0.0, rng.uniform(5.0, 8.0)])
                cyl_kind.append(0)
    return (
        np.asarray(boxes, dtype=np.float64).reshape(-1, 7),
        np.asarray(box_kind, dtype=np.int8),
        np.asarray(cyls, dtype=np.float64).reshape(-1, 5),
        np.asarray(cyl_kind, dtype=np.int8),
    )


def box_clearance(
    boxes: np.ndarray, points: np.ndarray, tree: cKDTree | None = None, reach: float = 10.0
) -> np.ndarray:
    """Distance from each box's footprint to the nearest of ``points`` (``reach`` + its
    half-diagonal where none is nearer)."""
    tree = cKDTree(points) if tree is None else tree
    half_diag = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4])
    out = half_diag + reach
    for i, idx in enumerate(tree.query_ball_point(boxes[:, :2], half_diag + reach)):
        if not idx:
            continue
        rel = points[idx] - boxes[i, :2]
        c, s = math.cos(boxes[i, 6]), math.sin(boxes[i, 6])
        lx, ly = c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]
        dx = np.maximum(np.abs(lx) - boxes[i, 3] / 2, 0)
        dy = np.maximum(np.abs(ly) - boxes[i, 4] / 2, 0)
        out[i] = min(out[i], float(np.hypot(dx, dy).min()))
    return out


def cylinder_clearance(
    cylinders: np.ndarray, points: np.ndarray, tree: cKDTree | None = None
) -> np.ndarray:
    """Distance from each cylinder's footprint disc to the nearest of ``points``."""
    tree = cKDTree(points) if tree is None else tree
    if len(cylinders) == 0:
        return np.zeros(0)
    d, _ = tree.query(cylinders[:, :2])
    return d - cylinders[:, 2]


def build_world(config: WorldConfig, seed: int) -> World:
    """Build the world of ``seed`` (deterministic: the same seed gives the same world).

    Different seeds give different networks, routes and scenery: that is how unseen test maps
    are made.
    """
    rng = np.random.default_rng(seed)
    nodes, edges, polylines = _network(config, rng)
    route = _build_route(config, nodes, edges, polylines, rng)
    boxes, box_kind, cyls, cyl_kind = _scenery(config, polylines, rng)

    # Clearances: (from any road centre line, from the route's lane centre line) per kind.
    w, kerb = config.lane_width, config.lane_width + config.shoulder_m
    lane_clear = w / 2 + 0.5
    box_need = np.array(
        [(kerb + 1.5, lane_clear), (w + 0.2, w / 2 + 2.0), (kerb - 0.2, lane_clear)]
    )
    cyl_need = np.array([(kerb + 0.2, lane_clear), (w + 0.5, lane_clear)])
    road_pts = np.concatenate(polylines)
    road_tree, route_tree = cKDTree(road_pts), cKDTree(route)
    keep = (box_clearance(boxes, road_pts, road_tree) >= box_need[box_kind, 0]) & (
        box_clearance(boxes, route, route_tree) >= box_need[box_kind, 1]
    )
    boxes, box_kind = boxes[keep], box_kind[keep]
    keep = (cylinder_clearance(cyls, road_pts, road_tree) >= cyl_need[cyl_kind, 0]) & (
        cylinder_clearance(cyls, route, route_tree) >= cyl_need[cyl_kind, 1]
    )
    cyls, cyl_kind = cyls[keep], cyl_kind[keep]

    grad = np.gradient(route, axis=0)
    heading = np.arctan2(grad[:, 1], grad[:, 0])
    return World(
        roads=polylines,
        route=route,
        route_s=np.arange(len(route)) * ROUTE_SPACING_M,
        route_heading=(heading + np.pi) % (2 * np.pi) - np.pi,
        lane_width=config.lane_width,
        boxes=boxes,
        cylinders=cyls,
        seed=int(seed),
        end_s=config.route_length_m,
        road_half_width=kerb,
        box_kind=box_kind,
        cylinder_kind=cyl_kind,
    )
