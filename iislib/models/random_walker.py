"""A training-free interactive segmenter: the random walker with priors (Grady 2005, 2006).

Seeds are disks around the clicks (foreground for positive clicks, background for negative ones)
and, as is usual for the random walker, the image border as background (except inside a positive
click's disk). The previous probability map enters as a prior: every unseeded pixel is tied with
weight ``prior_weight`` to its previous value, so regions far from new clicks keep what the user
already had instead of being recomputed from scratch. The unknown probabilities solve

    (L_uu + gamma I) x_u = -L_us x_s + gamma * prev_u

(L the graph Laplacian of the 4-connected pixel grid with weights exp(-beta |dI|^2 / (10 std))),
solved directly. To stay fast on a 2-core laptop the walk runs on a copy of the image whose
longer side is at most ``max_side`` pixels, then the result is resized back bilinearly.

The solve colours the pixels like a checkerboard: red pixels neighbour only black ones, so the
red unknowns have a diagonal block and are eliminated exactly, leaving the Schur complement on
the black unknowns (half as many), which SuperLU factorises without pivoting in a minimum
degree order computed once per grid shape (``_grid_plan``). The probabilities equal those of a
plain ``spsolve`` of the system above to rounding (1e-9 is tested; ~1e-13 is typical).

Cost per click at 224x224 (ipol settings, working size 128x128), measured back to back with
``python benchmarks/bench_walker.py --old PATH`` (10 Berkeley images, rgto99 and r02, 20 clicks)
on the 2-core machine while another process kept one core busy: 19-28 ms, against 55-66 ms for
the plain spsolve (COLAMD) version; one call with 15 clicks alone: 17 ms against 40 ms. About
14 ms of it is the factorisation. scikit-image's ``random_walker`` (conjugate gradients) costs
0.7-1.0 s per click at 224x224 here.

The graph of an image (~10 ms at 128x128) is built once per trajectory: the loop opens a state
per trajectory (``start``) and the first prediction fills it. Called without a state, each
prediction builds it anew.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from skimage.transform import resize

from iislib.core.clicks import Click
from iislib.core.model import IISModel

# SuperLU without pivoting, in the order given: the matrix is symmetric positive definite, so
# diagonal pivots are stable, and the fill-reducing order is computed once per grid shape.
# Small panels and supernodes suit these factors (~15 ms instead of ~19 ms at 128x128).
_SPLU = dict(
    permc_spec="NATURAL",
    diag_pivot_thresh=0.0,
    relax=3,
    panel_size=4,
    options=dict(SymmetricMode=True),
)


@dataclass(frozen=True)
class _GridPlan:
    """The structure of the red-black reduced system of an (hs, ws) 4-connected grid.

    Pixels are numbered p = row * ws + col. Red pixels ((row + col) even) neighbour only black
    ones and vice versa, so eliminating the red unknowns leaves a system on the black unknowns,
    S = A_bb - A_br A_rr^-1 A_rb, whose matrix A_rr is diagonal. S's entries come from pairs of
    edges meeting at a red pixel ("terms"); S is stored for the whole grid in CSC form, its
    black pixels in a fill-reducing elimination order, and restricted to the unknowns per click.

    Attributes:
        red, black: int64 pixel indices of each colour, ascending.
        edge_red, edge_black: int64 (n_edges,) red and black end of each edge, as positions in
            ``red`` and ``black``; edges listed vertical first, then horizontal (``_Graph``).
        term_red: int64 (n_terms,) the red pixel (position in ``red``) of each term.
        term_e1, term_e2: int64 (n_terms,) its two edges.
        term_pos: int64 (n_terms,) the entry of S (index into its CSC data) it adds to.
        diag_pos: int64 (n_black,) the entry of S holding each black pixel's diagonal.
        order: int64 (n_black,) black positions in elimination order (S's row/column k is
            black pixel ``black[order[k]]``).
        s_rows, s_cols: int64 (nnz,) row and column (elimination rank) of every entry of S.
    """

    red: np.ndarray
    black: np.ndarray
    edge_red: np.ndarray
    edge_black: np.ndarray
    term_red: np.ndarray
    term_e1: np.ndarray
    term_e2: np.ndarray
    term_pos: np.ndarray
    diag_pos: np.ndarray
    order: np.ndarray
    s_rows: np.ndarray
    s_cols: np.ndarray


def _grid_edges(hs: int, ws: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 end pixels (a, b) of every edge: the vertical edges row by row, then the horizontal."""
    idx = np.arange(hs * ws).reshape(hs, ws)
    a = np.concatenate([idx[:-1].ravel(), idx[:, :-1].ravel()])
    b = np.concatenate([idx[1:].ravel(), idx[:, 1:].ravel()])
    return a, b


@functools.lru_cache(maxsize=8)
def _grid_plan(hs: int, ws: int) -> _GridPlan:
    """The structure of an (hs, ws) grid's reduced system (image-independent, so cached)."""
    n = hs * ws
    rr, cc = np.divmod(np.arange(n), ws)
    is_red = (rr + cc) % 2 == 0
    red, black = np.flatnonzero(is_red), np.flatnonzero(~is_red)
    where = np.empty(n, dtype=np.int64)  # pixel -> position among its colour
    where[red] = np.arange(len(red))
    where[black] = np.arange(len(black))
    a, b = _grid_edges(hs, ws)
    a_red = is_red[a]
    edge_red = where[np.where(a_red, a, b)]
    edge_black = where[np.where(a_red, b, a)]
    # Terms: every ordered pair of edges (e1, e2) at the same red pixel, e1 == e2 included.
    by_red = np.argsort(edge_red, kind="stable")
    starts = np.searchsorted(edge_red[by_red], np.arange(len(red) + 1))
    deg = np.diff(starts)
    e1, e2 = [], []
    for k in range(1, 5):  # pixels of each degree at once
        at = np.flatnonzero(deg == k)
        if len(at):
            incident = by_red[starts[at][:, None] + np.arange(k)]  # (n_at, k) edges
            e1.append(np.repeat(incident, k, axis=1).ravel())
            e2.append(np.tile(incident, (1, k)).ravel())
    term_e1 = np.concatenate(e1) if e1 else np.zeros(0, np.int64)
    term_e2 = np.concatenate(e2) if e2 else np.zeros(0, np.int64)
    term_red = edge_red[term_e1]
    nb = len(black)
    # S's pattern: its diagonal and every term's (row, col), in the elimination order.
    rows = np.concatenate([np.arange(nb), edge_black[term_e1]])
    cols = np.concatenate([np.arange(nb), edge_black[term_e2]])
    pattern = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(nb, nb))
    pattern.sum_duplicates()
    order = _fill_reducing_order(pattern)
    rank = np.empty(nb, dtype=np.int64)
    rank[order] = np.arange(nb)
    # Entries of the permuted S, sorted column by column then row by row (CSC order).
    key = rank[cols] * nb + rank[rows]
    entries, pos = np.unique(key, return_inverse=True)
    s_cols, s_rows = np.divmod(entries, nb)
    return _GridPlan(
        red=red, black=black, edge_red=edge_red, edge_black=edge_black, term_red=term_red,
        term_e1=term_e1, term_e2=term_e2, term_pos=pos[nb:], diag_pos=pos[:nb], order=order,
        s_rows=s_rows, s_cols=s_cols,
    )  # fmt: skip


def _fill_reducing_order(pattern: sp.csc_matrix) -> np.ndarray:
    """SuperLU's minimum degree order on A + A^T for a symmetric pattern (int64 positions).

    Computed on the whole grid once; the unknowns of a click are a subset of it, and restricting
    an elimination order to a subset never adds fill.
    """
    n = pattern.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # Values only need to make the factorisation succeed: a diagonally dominant matrix.
    m = pattern.copy()
    m.data[:] = -1.0
    m = m + sp.diags(np.full(n, 20.0))
    lu = splu(m.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
              options=dict(SymmetricMode=True))  # fmt: skip
    return np.argsort(lu.perm_c).astype(np.int64)  # perm_c[j] is column j's new place


@functools.lru_cache(maxsize=16)
def _resize_operator(n_in: int, n_out: int) -> sp.csr_matrix:
    """CSR (n_out, n_in): scikit-image's bilinear ``resize`` along one axis, without
    anti-aliasing, as a matrix (each row holds at most two weights).

    Bilinear interpolation is separable and linear, so ``R_rows @ X @ R_cols.T`` is
    ``resize(X, order=1, anti_aliasing=False)`` up to rounding and the clip to X's range; the
    columns come from resizing the identity, so the boundary rule is scikit-image's own.
    """
    eye = np.eye(n_in)
    return sp.csr_matrix(resize(eye, (n_out, n_in), order=1, anti_aliasing=False, clip=False))


def _upsample(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float64 ``x`` (hs, ws) resized bilinearly to ``shape`` as ``resize(x, shape, order=1,
    anti_aliasing=False)`` does, within rounding (~1e-16), in a fraction of its time."""
    rows = _resize_operator(x.shape[0], shape[0])
    cols = _resize_operator(x.shape[1], shape[1])
    out = np.asarray((cols @ (rows @ x).T).T)
    return np.clip(out, x.min(), x.max())  # scikit-image clips to the input's range


@dataclass(frozen=True)
class _Graph:
    """An image's working-size copy and the weights of its grid graph.

    Attributes:
        small: float64 (hs, ws, 3) the image at the working resolution.
        weights: float64 (n_edges,) edge weights, in ``_grid_edges`` order.
        degree: float64 (hs * ws,) weighted degree of every pixel (the Laplacian's diagonal).
        coupling: CSR (n_red, n_black) edge weights between red and black pixels (positions).
        coupling_t: its transpose, CSR.
        term_coef: float64 (n_terms,) product of each term's two edge weights.
    """

    small: np.ndarray
    weights: np.ndarray
    degree: np.ndarray
    coupling: sp.csr_matrix
    coupling_t: sp.csr_matrix
    term_coef: np.ndarray


@dataclass
class WalkerState:
    """What the random walker keeps from click to click of one trajectory: its image (float32
    (H, W, 3)) and that image's working-size copy and graph weights, once the first prediction
    has built them."""

    image: np.ndarray | None = None
    graph: _Graph | None = None


class RandomWalker(IISModel):
    """Random walker with priors.

    Args:
        beta: edge sensitivity (scikit-image's convention: divided by 10x the image std).
        max_side: longer side of the working resolution, pixels.
        seed_radius: radius of a click's seed disk at full resolution, pixels.
        prior_weight: gamma, the weight tying each pixel to its previous probability.
        border_background: seed the image border as background.
    """

    def __init__(
        self,
        beta: float = 130.0,
        max_side: int = 128,
        seed_radius: float = 10.0,
        prior_weight: float = 1e-4,
        border_background: bool = True,
    ) -> None:
        if max_side < 8:
            raise ValueError(f"max_side must be at least 8, got {max_side}")
        self.beta = beta
        self.max_side = max_side
        self.seed_radius = seed_radius
        self.prior_weight = prior_weight
        self.border_background = border_background

    # -- graph ------------------------------------------------------------------------------

    def start(self, image: np.ndarray) -> WalkerState:
        """An empty state for a trajectory on ``image``; its first prediction builds the graph."""
        return WalkerState()

    def _graph(self, image: np.ndarray) -> _Graph:
        """Working-size copy of ``image`` (float32 (H, W, 3) in [0, 1]) and its graph."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        hs, ws = max(2, round(h * scale)), max(2, round(w * scale))
        small = image if (hs, ws) == (h, w) else resize(image, (hs, ws), anti_aliasing=True)
        small = small.astype(np.float64)
        dv = ((small[1:] - small[:-1]) ** 2).sum(-1)
        dh = ((small[:, 1:] - small[:, :-1]) ** 2).sum(-1)
        std = max(float(small.std()), 1e-6)
        b = self.beta / (10.0 * std)
        weights = np.concatenate([(np.exp(-b * dv) + 1e-6).ravel(),
                                  (np.exp(-b * dh) + 1e-6).ravel()])  # fmt: skip
        a_end, b_end = _grid_edges(hs, ws)
        degree = np.bincount(a_end, weights, hs * ws) + np.bincount(b_end, weights, hs * ws)
        plan = _grid_plan(hs, ws)
        coupling = sp.csr_matrix(
            (weights, (plan.edge_red, plan.edge_black)), shape=(len(plan.red), len(plan.black))
        )
        return _Graph(
            small=small, weights=weights, degree=degree, coupling=coupling,
            coupling_t=coupling.T.tocsr(),
            term_coef=weights[plan.term_e1] * weights[plan.term_e2],
        )  # fmt: skip

    # -- prediction -------------------------------------------------------------------------

    def _labels(self, clicks: list[Click], shape: tuple[int, int], hs: int, ws: int) -> np.ndarray:
        """int8 (hs, ws) seeds: 0 unseeded, 1 foreground, -1 background."""
        h, w = shape
        sr, sc = hs / h, ws / w
        labels = np.zeros((hs, ws), dtype=np.int8)
        if self.border_background:
            labels[[0, -1], :] = -1
            labels[:, [0, -1]] = -1
        radius = max(self.seed_radius * min(sr, sc), 0.75)
        reach = int(np.ceil(radius)) + 1  # the disk lies in this box around its centre
        # Later clicks overwrite earlier ones where disks overlap; positives also clear the border.
        for c in clicks:
            r0, c0 = (c.row + 0.5) * sr - 0.5, (c.col + 0.5) * sc - 0.5
            ra, rb = max(0, int(np.floor(r0)) - reach), min(hs, int(np.ceil(r0)) + reach + 1)
            ca, cb = max(0, int(np.floor(c0)) - reach), min(ws, int(np.ceil(c0)) + reach + 1)
            rr = np.arange(ra, rb)[:, None]
            cc = np.arange(ca, cb)[None, :]
            disk = (rr - r0) ** 2 + (cc - c0) ** 2 <= radius**2
            disk[min(hs - 1, int(r0 + 0.5)) - ra, min(ws - 1, int(c0 + 0.5)) - ca] = True
            labels[ra:rb, ca:cb][disk] = 1 if c.positive else -1
        return labels

    def _predict(
        self,
        image: np.ndarray,
        clicks: list[Click],
        prev: np.ndarray,
        state: WalkerState | None = None,
    ) -> np.ndarray:
        h, w = image.shape[:2]
        if state is None:
            graph = self._graph(image)
        else:
            if state.graph is None:
                state.image, state.graph = image, self._graph(image)
            elif state.image.shape != image.shape or not np.array_equal(state.image, image):
                raise ValueError("this trajectory state was opened for another image")
            graph = state.graph
        return self._probabilities(graph, clicks, prev).astype(np.float32)

    def _probabilities(self, graph: _Graph, clicks: list[Click], prev: np.ndarray) -> np.ndarray:
        """float64 (H, W) in [0, 1] for ``prev``'s (H, W): the walk on ``graph``, resized back."""
        h, w = prev.shape
        hs, ws = graph.small.shape[:2]
        labels = self._labels(clicks, (h, w), hs, ws)
        if not (labels == 1).any():
            return np.zeros((h, w))
        if prev.shape == (hs, ws):
            prior = prev
        elif prev.any():
            prior = resize(prev, (hs, ws), order=1)
        else:  # resizing zeros gives zeros
            prior = np.zeros((hs, ws))
        x = self._solve(graph, labels.ravel(), prior.ravel())
        prob = x.reshape(hs, ws)
        if (hs, ws) != (h, w):
            prob = _upsample(prob, (h, w))
        return np.clip(prob, 0.0, 1.0)

    def _solve(self, graph: _Graph, labels: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """float64 (hs * ws,) probabilities: the seeds' labels, the unknowns solved.

        Solves (L_uu + gamma I) x_u = -L_us x_s + gamma prior_u by eliminating the red unknowns
        (a diagonal block) and factorising the Schur complement on the black ones.
        """
        hs, ws = graph.small.shape[:2]
        plan = _grid_plan(hs, ws)
        gamma = self.prior_weight
        x = np.where(labels == 1, 1.0, 0.0)
        unknown = labels == 0
        if not unknown.any():
            return x
        u_red, u_black = unknown[plan.red], unknown[plan.black]
        # rhs = -L_us x_s + gamma prior_u: the seeded neighbours' weighted labels.
        rhs_red = graph.coupling @ np.where(u_black, 0.0, x[plan.black]) + gamma * prior[plan.red]
        rhs_black = graph.coupling_t @ np.where(u_red, 0.0, x[plan.red])
        rhs_black += gamma * prior[plan.black]
        diag_red = graph.degree[plan.red] + gamma
        inv_red = np.where(u_red, 1.0 / diag_red, 0.0)  # seeded red pixels drop out
        xb = np.zeros(len(plan.black))
        if u_black.any():
            # S = A_bb - A_br A_rr^-1 A_rb over the whole grid, then restricted to unknowns.
            data = np.bincount(plan.term_pos, graph.term_coef * inv_red[plan.term_red],
                               minlength=len(plan.s_rows))  # fmt: skip
            data = -data
            data[plan.diag_pos] += graph.degree[plan.black] + gamma
            keep_rank = u_black[plan.order]
            kept = keep_rank[plan.s_rows] & keep_rank[plan.s_cols]
            new = np.cumsum(keep_rank) - 1
            m = int(keep_rank.sum())
            indptr = np.zeros(m + 1, dtype=np.int64)
            np.cumsum(np.bincount(new[plan.s_cols[kept]], minlength=m), out=indptr[1:])
            s = sp.csc_matrix((data[kept], new[plan.s_rows[kept]], indptr), shape=(m, m))
            g = rhs_black + graph.coupling_t @ (inv_red * rhs_red)
            unknown_black = plan.order[keep_rank]  # black positions in elimination order
            xb[unknown_black] = splu(s, **_SPLU).solve(g[unknown_black])
        x[plan.black[u_black]] = xb[u_black]
        x_red = (rhs_red + graph.coupling @ xb) * inv_red
        x[plan.red[u_red]] = x_red[u_red]
        return x
