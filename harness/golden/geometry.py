"""Line geometry for golden comparison: polygon IoU, vertex shift, and one-to-one matching by IoU.

Lines are matched by where they are, never by list position: PaddleOCR sorts boxes top-to-bottom, so a box
that moves one pixel can swap places with its neighbour in the list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import shapely
from shapely.geometry import Polygon

from harness.model.results import Line, Point

BBox = tuple[int, int, int, int]


def _shape(points: Sequence[Point]) -> shapely.Geometry:
    poly = Polygon(points)
    # A self-intersecting quad (vertices out of order) has no meaningful area until repaired.
    return poly if poly.is_valid else shapely.make_valid(poly)


def polygon_iou(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Intersection over union of two polygons; degenerate (zero-area) ones count as equal only if identical."""
    if tuple(a) == tuple(b):
        return 1.0
    pa, pb = _shape(a), _shape(b)
    area_a, area_b = pa.area, pb.area
    if area_a == 0.0 or area_b == 0.0:
        return 0.0
    inter = pa.intersection(pb).area
    union = area_a + area_b - inter
    return min(1.0, inter / union) if union > 0 else 0.0


def _oriented(points: Sequence[Point]) -> list[Point]:
    pts = list(points)
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    twice_area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True))
    return pts[::-1] if twice_area < 0 else pts


def max_vertex_shift(a: Sequence[Point], b: Sequence[Point]) -> float:
    """How far, in pixels, the furthest vertex moved.

    Both rings are brought to one orientation and compared at the cyclic rotation of the point order that
    fits best, so a box whose first vertex changed (a slightly rotated quad) is not reported as a large move.
    Rings with different vertex counts fall back to the symmetric vertex Hausdorff distance.
    """
    pa, pb = _oriented(a), _oriented(b)
    if not pa or not pb:
        return 0.0 if not pa and not pb else math.inf
    if len(pa) != len(pb):
        return max(_directed(pa, pb), _directed(pb, pa))
    n = len(pa)
    best = math.inf
    for k in range(n):
        worst = max(math.dist(pa[i], pb[(i + k) % n]) for i in range(n))
        best = min(best, worst)
    return best


def _directed(src: list[Point], dst: list[Point]) -> float:
    return max(min(math.dist(p, q) for q in dst) for p in src)


def bbox(points: Sequence[Point]) -> BBox:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(a: BBox, b: BBox) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def match_lines(golden: Sequence[Line], current: Sequence[Line], min_iou: float) -> list[tuple[int, int, float]]:
    """One-to-one pairs `(golden index, current index, iou)` with iou >= `min_iou`, maximising total IoU.

    Candidate pairs form small connected groups (a line overlaps at most its neighbours), and each group is
    solved exactly with the Hungarian method, so a split or merged line cannot steal its neighbour's match the
    way a greedy pass can. Current lines enter in a canonical order so the result does not depend on the
    order the OCR listed them in.
    """
    order = sorted(range(len(current)), key=lambda j: (current[j].poly, current[j].text, current[j].score))
    gboxes = [bbox(line.poly) for line in golden]
    cboxes = {j: bbox(current[j].poly) for j in order}
    weights: dict[tuple[int, int], float] = {}
    for i, g in enumerate(golden):
        for j in order:
            if not _overlap(gboxes[i], cboxes[j]):
                continue
            iou = polygon_iou(g.poly, current[j].poly)
            if iou >= min_iou and iou > 0.0:
                weights[(i, j)] = iou

    def weight(i: int, j: int) -> float:
        if (i, j) not in weights:
            return 0.0
        # Breaks exact IoU ties toward the line that reads the same; never outweighs a real IoU difference.
        return weights[(i, j)] + (1e-9 if golden[i].text == current[j].text else 0.0)

    pairs: list[tuple[int, int, float]] = []
    for gs, cs in _components(weights, order):
        for r, c in _max_assignment([[weight(i, j) for j in cs] for i in gs]):
            if (gs[r], cs[c]) in weights:
                pairs.append((gs[r], cs[c], weights[(gs[r], cs[c])]))
    return sorted(pairs)


def _components(weights: dict[tuple[int, int], float], order: list[int]) -> list[tuple[list[int], list[int]]]:
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(x: tuple[str, int]) -> tuple[str, int]:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in weights:
        ra, rb = find(("g", i)), find(("c", j))
        if ra != rb:
            parent[rb] = ra
    groups: dict[tuple[str, int], tuple[set[int], set[int]]] = {}
    for i, j in weights:
        gs, cs = groups.setdefault(find(("g", i)), (set(), set()))
        gs.add(i)
        cs.add(j)
    rank = {j: k for k, j in enumerate(order)}
    return sorted((sorted(gs), sorted(cs, key=rank.__getitem__)) for gs, cs in groups.values())


def _max_assignment(weights: list[list[float]]) -> list[tuple[int, int]]:
    """Rows to columns maximising the total weight (Hungarian method, O(n^2 m)); every row of the smaller side
    is assigned, so callers drop zero-weight pairs."""
    if not weights or not weights[0]:
        return []
    transposed = len(weights) > len(weights[0])
    w = [list(col) for col in zip(*weights, strict=True)] if transposed else weights
    n, m = len(w), len(w[0])
    inf = math.inf
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    p, way = [0] * (m + 1), [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = -w[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(p[j] - 1, j - 1) for j in range(1, m + 1) if p[j]]
    return sorted((c, r) for r, c in pairs) if transposed else sorted(pairs)
