"""Compiled inner loops of the fused convolution + pooling, beside their numpy twins.

Each kernel here is one pass over memory that numpy does in several: the max over a
pool's window offsets with the bias and ReLU after it (and, when training, which offset
held it), the backward routing of a pooled gradient to that offset, the im2col of its
input and the col2im of its input gradient (one channel's phase planes at a time, kept
in cache), the max over all
positions of a convolution's output (:class:`gridnet.core.fused.ConvMax`) and the
sparse weight and column gradients behind it (for a sentence, over the positions a
word reaches only: the ``ragged_*`` kernels), a sentence's word vectors and the
gradients of the word and n-gram tables, and Adam's update of its moments and
step. They are compiled with numba (a dependency of librosa, declared
by gridnet too) on first use and cached on disk (``cache=True``); the numpy versions
stay, and run where numba cannot be imported or when the environment variable
``GRIDNET_KERNELS=numpy`` is set (read when this module is imported). On finite values the two compute the same numbers: the same
comparisons and float operations in the same order, so that they agree to the bit (the
tests hold them to it); neither splits work between threads.

:func:`backend` names the one in use; :func:`pool_forward`, :func:`pool_route` and
:func:`adam_direction` take ``kernels=`` ("numba" or "numpy") so that a layer, or a
test, can choose; :func:`im2col_phases` and :func:`col2im_phases` are numba's alone
(their twins are the numpy code of :meth:`gridnet.core.fused.ConvPool._im2col` and
``_col2im``).

Shapes: ``y`` is a chunk's convolution output sorted by window offset, ``(f, k*L)``
(``k`` offsets, ``L`` windows each); ``out``, ``arg`` (the offsets), ``gc`` are ``(f, L)``.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["backend", "argmax_dtype", "pool_forward", "pool_route", "grid_from",
           "im2col_phases", "col2im_phases", "global_max", "sparse_dw", "sparse_dcols", "sparse_dx",
           "ragged_rows", "ragged_columns", "offsets_first", "ragged_max", "ragged_dw", "ragged_dx",
           "bag_csr", "bag_dw", "embedding_rows", "embedding_dw", "adam_apply", "adam_direction",
           "adam_moments", "adam_step"]

try:
    if os.environ.get("GRIDNET_KERNELS", "").strip().lower() == "numpy":
        raise ImportError("GRIDNET_KERNELS=numpy")
    import numba as _numba
except ImportError:            # numba missing or refused: the numpy kernels run
    _numba = None


def backend():
    """``"numba"`` when the compiled kernels run, else ``"numpy"``."""
    return "numpy" if _numba is None else "numba"


# -- numpy -------------------------------------------------------------------------------
def _pool_forward_np(y, k, b, relu, out, arg):
    L = out.shape[1]
    yv = y.reshape(y.shape[0], k, L)
    if arg is None:
        np.maximum(yv[:, 0], yv[:, 1], out=out)
        for j in range(2, k):
            np.maximum(out, yv[:, j], out=out)
    else:               # a later offset wins only when strictly larger: the first maximum
        out[...] = yv[:, 0]
        arg[...] = 0
        for j in range(1, k):
            wins = yv[:, j] > out
            np.copyto(out, yv[:, j], where=wins)
            np.copyto(arg, j, where=wins)
    np.add(out, b[:, None], out=out)
    if relu:
        np.maximum(out, 0, out=out)


def _pool_route_np(gc, out, arg, k, relu, g):
    f, L = gc.shape
    if relu:
        np.multiply(gc, out > 0, out=gc)
    gv = g.reshape(f, k, L)
    for j in range(k):
        np.multiply(gc, arg == j, out=gv[:, j])


def _grid_from_np(grad, gq):
    _, _, ho, wo = grad.shape
    gq[:, :, :ho, :wo] = grad.transpose(1, 0, 2, 3)
    gq[:, :, ho:] = 0
    gq[:, :, :, wo:] = 0


def _global_max_np(y, mx, at):
    m, f, h, w = y.shape
    if y.transpose(1, 0, 2, 3).flags.c_contiguous:     # (f, m, h, w): no copy
        flat = y.transpose(1, 0, 2, 3).reshape(f, m, h * w)
        a = flat.argmax(axis=2)
        at[...] = a.T
        mx[...] = np.take_along_axis(flat, a[:, :, None], axis=2)[:, :, 0].T
        return
    flat = y.reshape(m, f, h * w)
    at[...] = flat.argmax(axis=2)
    mx[...] = np.take_along_axis(flat, at[:, :, None], axis=2)[:, :, 0]


def _sparse_dw_np(cols, positions_first, r, g, dW):
    for n in range(r.shape[0]):
        rows = cols[r[n]] if positions_first else cols[:, r[n]].T
        dW += g[n][:, None] * rows


def _sparse_dcols_np(r, g, W, dcols, positions_first):
    for f in range(r.shape[1]):
        if positions_first:
            dcols[r[:, f]] += g[:, f][:, None] * W[f]
        else:
            dcols[:, r[:, f]] += g[:, f][None, :] * W[f][:, None]


def _rows_of_np(x, kh, xt, first, last):
    h = x.shape[1]
    xt[:, kh:kh + h] = x
    nz = (x != 0).any(axis=2)                                  # (m, h): a word's row
    has = nz.any(axis=1)
    first[...] = np.where(has, nz.argmax(axis=1), h)
    last[...] = np.where(has, h - 1 - nz[:, ::-1].argmax(axis=1), -1)


def _ragged_cols_np(xt, lo, cnt, off, pt, kh, cols):
    R = cols.shape[0] - 1
    sample = np.repeat(np.arange(xt.shape[0]), cnt)
    start = np.arange(R) - off[sample] + lo[sample] - pt + kh
    cols[:R] = xt[sample[:, None], start[:, None] + np.arange(kh)].reshape(R, -1)
    cols[R] = 0


def _ragged_max_np(y, lo, cnt, off, ho, mx, at, r):
    R, f = y.shape[0] - 1, y.shape[1]
    z = y[R]
    for n in range(mx.shape[0]):
        k = cnt[n]
        if k == 0:
            mx[n], at[n], r[n] = z, 0, R
            continue
        j = y[off[n]:off[n] + k].argmax(axis=0)
        best = y[off[n] + j, np.arange(f)]
        where, col = lo[n] + j, off[n] + j
        if k < ho:
            p0 = 0 if lo[n] > 0 else k
            z_wins = (z > best) | (np.isnan(z) & ~np.isnan(best))
            best_wins = (best > z) | (np.isnan(best) & ~np.isnan(z))
            take = np.where(p0 < where, ~best_wins, z_wins)
            best, where = np.where(take, z, best), np.where(take, p0, where)
            col = np.where(take, R, col)
        mx[n], at[n], r[n] = best, where, col


def _ragged_dw_np(cols, r, g, dW):
    R = cols.shape[0] - 1
    for n in range(r.shape[0]):
        keep = r[n] != R
        dW[keep] += g[n, keep][:, None] * cols[r[n, keep]]

def adam_moments(g, m, v, b1, c1, b2, c2, scratch):
    """numpy: Adam's moments, in place: ``m = b1*m + c1*g``, ``v = b2*v + c2*g*g``."""
    m *= b1
    np.multiply(g, c1, out=scratch)
    m += scratch
    v *= b2
    np.multiply(g, g, out=scratch)
    scratch *= c2
    v += scratch


def adam_step(m, v, eps, step, out):
    """numpy: ``out = step * m / (sqrt(v) + eps)``, the amount to subtract."""
    np.sqrt(v, out=out)
    out += eps
    np.divide(m, out, out=out)
    out *= step


def _adam_direction_np(g, m, v, b1, c1, b2, c2, eps, step, out):
    adam_moments(g, m, v, b1, c1, b2, c2, out)
    adam_step(m, v, eps, step, out)


# -- numba -------------------------------------------------------------------------------
if _numba is not None:
    # error_model="numpy": a division by zero gives inf or nan, as in numpy, and lets the
    # loops vectorise (Python's ZeroDivisionError check keeps them scalar)
    _jit = _numba.njit(cache=True, nogil=True, error_model="numpy")

    @_jit
    def _pool_forward_nb(y, k, b, relu, out):            # pragma: no cover (compiled)
        f, L = out.shape
        zero = out.dtype.type(0)
        for i in range(f):      # rows as slices: no negative-index checks in the loops
            o, bi = out[i], b[i]
            y0, y1 = y[i, :L], y[i, L:2 * L]
            for p in range(L):
                a, c = y0[p], y1[p]
                o[p] = c if c > a else a
            for j in range(2, k):
                yj = y[i, j * L:(j + 1) * L]
                for p in range(L):
                    c = yj[p]
                    o[p] = c if c > o[p] else o[p]
            for p in range(L):
                v = o[p] + bi
                o[p] = (v if v > zero else zero) if relu else v

    @_jit
    def _pool_forward_arg_nb(y, k, b, relu, out, arg):   # pragma: no cover (compiled)
        f, L = out.shape
        zero = out.dtype.type(0)
        for i in range(f):
            o, a, bi = out[i], arg[i], b[i]
            y0 = y[i, :L]
            for p in range(L):
                o[p] = y0[p]
                a[p] = 0
            for j in range(1, k):   # strictly larger: the first maximum keeps its place
                yj = y[i, j * L:(j + 1) * L]
                for p in range(L):
                    c = yj[p]
                    wins = c > o[p]
                    o[p] = c if wins else o[p]
                    a[p] = j if wins else a[p]
            for p in range(L):
                v = o[p] + bi
                o[p] = (v if v > zero else zero) if relu else v

    @_jit
    def _pool_route_nb(gc, out, arg, k, relu, g):        # pragma: no cover (compiled)
        f, L = gc.shape
        zero = gc.dtype.type(0)
        for i in range(f):      # rows as slices: no negative-index checks in the loops
            gi, oi, ai = gc[i], out[i], arg[i]
            if relu:
                for p in range(L):
                    gi[p] = gi[p] if oi[p] > zero else zero
            for j in range(k):
                gj = g[i, j * L:(j + 1) * L]
                for p in range(L):
                    gj[p] = gi[p] if ai[p] == j else zero

    @_jit
    def _grid_from_nb(grad, gq):                         # pragma: no cover (compiled)
        m, f, ho, wo = grad.shape
        hq, wq = gq.shape[2], gq.shape[3]
        zero = gq.dtype.type(0)
        for i in range(f):
            for s in range(m):
                for r in range(hq):
                    row = gq[i, s, r]
                    if r < ho:
                        src = grad[s, i, r]
                        for c in range(wo):
                            row[c] = src[c]
                        for c in range(wo, wq):
                            row[c] = zero
                    else:
                        for c in range(wq):
                            row[c] = zero

    @_jit
    def _copy_phases(grid, rows, cols, Wq, P, buf, into_buf):  # pragma: no cover
        # one channel's grid (m, h, w) <-> its phase planes buf (ph*pw, m*P + tail):
        # into buf when into_buf, else back onto the grid (the places a phase holds)
        ph, pw = rows.shape[0], cols.shape[0]
        for s in range(ph):
            y0, Y0, ny = rows[s, 0], rows[s, 1], rows[s, 2]
            for t in range(pw):
                x0, X0, nx = cols[t, 0], cols[t, 1], cols[t, 2]
                q = s * pw + t
                for mi in range(grid.shape[0]):
                    for yy in range(ny):
                        # slices, not computed indices: no negative-index checks in the
                        # loops (one channel of the probe's layer: 18 -> 12 us)
                        at = mi * P + (Y0 + yy) * Wq + X0
                        line, run = grid[mi, y0 + ph * yy, x0::pw], buf[q, at:at + nx]
                        if into_buf:
                            for xx in range(nx):
                                run[xx] = line[xx]
                        else:
                            for xx in range(nx):
                                line[xx] = run[xx]

    @_jit
    def _im2col_phases_nb(x, shifts, rows, cols, Hq, Wq, buf, out):  # pragma: no cover
        L = out.shape[2]
        for ci in range(x.shape[1]):        # one channel's phases stay in cache
            buf[:] = 0
            _copy_phases(x[:, ci], rows, cols, Wq, Hq * Wq, buf, True)
            for k in range(shifts.shape[0]):
                src = buf[shifts[k, 0], shifts[k, 1]:shifts[k, 1] + L]
                dst = out[ci, k]
                for i in range(L):
                    dst[i] = src[i]

    @_jit
    def _col2im_phases_nb(dcols, shifts, rows, cols, Hq, Wq, buf, dx):  # pragma: no cover
        L = dx.shape[1] * Hq * Wq
        for ci in range(dx.shape[0]):       # one channel's phases stay in cache
            buf[:] = 0
            for k in range(shifts.shape[0]):
                dst = buf[shifts[k, 0], shifts[k, 1]:shifts[k, 1] + L]
                src = dcols[ci, k]
                for i in range(L):
                    dst[i] += src[i]
            _copy_phases(dx[ci], rows, cols, Wq, Hq * Wq, buf, False)

    @_jit
    def _global_max_nb(y, mx, at):                        # pragma: no cover (compiled)
        # y (m, P, f), features contiguous: the first maximum over positions of each
        # sample's feature; a NaN wins (the first one), as in numpy's argmax
        m, P, f = y.shape
        for n in range(m):
            best, where = mx[n], at[n]
            for c in range(f):
                best[c] = y[n, 0, c]
                where[c] = 0
            for p in range(1, P):
                row = y[n, p]
                for c in range(f):            # no branch: the loop vectorises
                    v, b = row[c], best[c]
                    take = (v > b) | ((v != v) & (b == b))
                    best[c] = v if take else b
                    where[c] = p if take else where[c]

    @_jit
    def _global_max_first_nb(y, mx, at):                  # pragma: no cover (compiled)
        # y (f, m, P): each feature's (m, P) block transposed in cache, then the scan of
        # _global_max_nb with its samples in the place of features
        f, m, P = y.shape
        tmp = np.empty((1, P, m), y.dtype)
        best = np.empty((1, m), y.dtype)
        where = np.empty((1, m), np.int64)
        for c in range(f):
            blk = y[c]
            for n in range(m):
                for p in range(P):
                    tmp[0, p, n] = blk[n, p]
            _global_max_nb(tmp, best, where)
            for n in range(m):
                mx[n, c] = best[0, n]
                at[n, c] = where[0, n]

    @_jit
    def _sparse_dw_nb(cols, positions_first, r, g, dW):   # pragma: no cover (compiled)
        m, f = r.shape
        if positions_first:
            for n in range(m):
                for c in range(f):
                    row, gv = cols[r[n, c]], g[n, c]
                    for k in range(dW.shape[1]):
                        dW[c, k] += gv * row[k]
        else:     # each sample's P columns transposed in cache: rows added, k innermost
            K, P = cols.shape[0], cols.shape[1] // m
            tmp = np.empty((P, K), cols.dtype)
            for n in range(m):
                base = n * P
                for k in range(K):
                    src = cols[k]
                    for p in range(P):
                        tmp[p, k] = src[base + p]
                for c in range(f):
                    gv, row, dst = g[n, c], tmp[r[n, c] - base], dW[c]
                    for k in range(K):
                        dst[k] += gv * row[k]

    @_jit
    def _sparse_dcols_nb(r, g, W, dcols, positions_first):  # pragma: no cover (compiled)
        m, f = r.shape
        if positions_first:
            for n in range(m):
                for c in range(f):
                    row, gv = dcols[r[n, c]], g[n, c]
                    for k in range(W.shape[1]):
                        row[k] += gv * W[c, k]
        else:
            for k in range(W.shape[1]):
                row = dcols[k]
                for n in range(m):
                    for c in range(f):
                        row[r[n, c]] += g[n, c] * W[c, k]

    @_jit
    def _sparse_dx_nb(r, g, Wt, dx, width, sh, sw, pt, pl, kw):  # pragma: no cover
        # sparse_dcols into zeroed columns, then col2im by offset and the unpadding, in
        # the same float order: per offset, per position, the features in order
        m, f = r.shape
        KK, _, c = Wt.shape
        h, w = dx.shape[2], dx.shape[3]
        P = 0
        for n in range(m):
            for k in range(f):
                P = max(P, r[n, k] + 1)
        start = np.zeros(P + 1, np.int64)
        fill = np.zeros(P, np.int64)
        order = np.empty(f, np.int64)
        loc = np.zeros((h, w, c), dx.dtype)
        acc = np.zeros(c, dx.dtype)
        for n in range(m):
            start[:] = 0
            for k in range(f):
                start[r[n, k] + 1] += 1
            for q in range(P):
                start[q + 1] += start[q]
                fill[q] = start[q]
            for k in range(f):            # the features at each position, in order
                order[fill[r[n, k]]] = k
                fill[r[n, k]] += 1
            loc[:] = 0
            for ij in range(KK):
                i = ij // kw
                j = ij - i * kw
                for q in range(P):
                    if start[q] == start[q + 1]:
                        continue
                    t = q // width
                    y = t * sh + i - pt
                    x = (q - t * width) * sw + j - pl
                    if y < 0 or y >= h or x < 0 or x >= w:
                        continue
                    acc[:] = 0
                    for s in range(start[q], start[q + 1]):
                        k = order[s]
                        gv, row = g[n, k], Wt[ij, k]
                        for ch in range(c):
                            acc[ch] += gv * row[ch]
                    dst = loc[y, x]
                    for ch in range(c):
                        dst[ch] += acc[ch]
            for ch in range(c):
                for y in range(h):
                    for x in range(w):
                        dx[ch, n, y, x] = loc[y, x, ch]

    @_jit
    def _adam_direction_nb(g, m, v, b1, c1, b2, c2, eps, step, out):  # pragma: no cover
        for i in range(g.shape[0]):
            gi = g[i]
            mi = m[i] * b1 + gi * c1
            vi = v[i] * b2 + (gi * gi) * c2
            m[i] = mi
            v[i] = vi
            out[i] = (mi / (np.sqrt(vi) + eps)) * step


    @_jit
    def _adam_apply_nb(g, p, wd, m, v, b1, c1, b2, c2, eps, step):  # pragma: no cover
        for i in range(g.shape[0]):
            gi = g[i] + wd * p[i] if wd else g[i]
            mi = m[i] * b1 + gi * c1
            vi = v[i] * b2 + (gi * gi) * c2
            m[i] = mi
            v[i] = vi
            p[i] = p[i] - (mi / (np.sqrt(vi) + eps)) * step


    @_jit
    def _half_bits(h):                                       # pragma: no cover (compiled)
        # the float32 bits of float16 bits h (numpy's conversion: exact, NaN payload kept)
        s, e, m = (h >> 15) << 31, (h >> 10) & 0x1F, h & 0x3FF
        if e == 0x1F:
            return s | 0x7F800000 | (m << 13)
        if e:
            return s | ((e + 112) << 23) | (m << 13)
        if m == 0:
            return s
        e = 113                                  # a subnormal half: normalise it
        while not m & 0x400:
            m <<= 1
            e -= 1
        return s | (e << 23) | ((m & 0x3FF) << 13)

    @_jit
    def _embedding_rows_nb(W, fixed, idx, trained, out):    # pragma: no cover (compiled)
        # out[n, t] = (W[:, column], fixed[word]) as float32 bits, or zeros for padding
        d, D = W.shape[0], out.shape[2]
        for n in range(idx.shape[0]):
            for t in range(idx.shape[1]):
                j, row = idx[n, t], out[n, t]
                if j < 0:
                    row[:] = 0
                    continue
                c = 0 if j >= trained else j
                for k in range(d):
                    row[k] = W[k, c]
                src = fixed[j]
                for k in range(D - d):
                    row[d + k] = _half_bits(np.uint32(src[k]))

    @_jit
    def _bag_dw_nb(indptr, indices, data, g, dirty, G):     # pragma: no cover (compiled)
        # G's rows in dirty set to 0, then G[j] += w * g[i] over each sentence's n-grams
        # in order (scipy's product of the transposed csr matrix with g)
        for j in dirty:
            G[j, :] = 0
        for i in range(g.shape[0]):
            gi = g[i]
            for a in range(indptr[i], indptr[i + 1]):
                w, row = data[a], G[indices[a]]
                for k in range(gi.shape[0]):
                    row[k] += w * gi[k]

    @_jit
    def _embedding_dw_nb(g, cols, pad, dW):                 # pragma: no cover (compiled)
        # dW[k, cols[n, t]] += g[n, k, t] over positions in order (a one-hot csr product's)
        n, d, h = g.shape
        for k in range(d):
            row = dW[k]
            for i in range(n):
                gi, ci, pi = g[i, k], cols[i], pad[i]
                for t in range(h):
                    if not pi[t]:
                        row[ci[t]] += gi[t]


    @_jit
    def _shell_sort(a):                                      # pragma: no cover (compiled)
        # ascending, in place; numba's own sort costs seconds to compile, this a fraction
        gap = 1
        while gap < a.shape[0] // 3:
            gap = 3 * gap + 1
        while gap > 0:
            for i in range(gap, a.shape[0]):
                v, j = a[i], i
                while j >= gap and a[j - gap] > v:
                    a[j] = a[j - gap]
                    j -= gap
                a[j] = v
            gap //= 3

    @_jit
    def _bag_csr_nb(idx, trained, buckets, n, A, B, columns, scale, indptr, indices, data):  # pragma: no cover
        # per sentence its n-grams' rows (ngram_ids's), sorted, each repeat's weight added:
        # scipy's canonical csr of the (data, (row, col)) triples
        s_count, h = idx.shape
        buf = np.empty(2 * h, np.int64)
        nnz = 0
        indptr[0] = 0
        for i in range(s_count):
            k = 0
            for t in range(h):
                v = idx[i, t]
                if v >= 0:
                    buf[k] = (0 if v >= trained else v) % buckets
                    k += 1
            if n >= 2:
                for t in range(h - 1):
                    a, b = idx[i, t], idx[i, t + 1]
                    if a >= 0 and b >= 0:
                        a = 0 if a >= trained else a
                        b = 0 if b >= trained else b
                        buf[k] = (a * A + b * B + 1) % buckets
                        k += 1
            w = scale / max(k, 1)        # every n-gram counts in the mean, rows or not
            kept = k
            if columns.shape[0]:
                kept = 0
                for j in range(k):
                    c = columns[buf[j]]
                    if c >= 0:
                        buf[kept] = c
                        kept += 1
            row = buf[:kept]
            _shell_sort(row)
            j = 0
            while j < kept:
                indices[nnz] = row[j]
                data[nnz] = w
                first = data[nnz]
                j += 1
                while j < kept and row[j] == row[j - 1]:
                    data[nnz] += first
                    j += 1
                nnz += 1
            indptr[i + 1] = nnz
        return nnz

    @_jit
    def _nonzero_nb(row):                                    # pragma: no cover (compiled)
        # any value that is not 0 (NaN included); no early exit: the loop vectorises
        found = False
        for v in row:
            found |= v != 0
        return found

    @_jit
    def _rows_of_nb(x, kh, xt, first, last):                 # pragma: no cover (compiled)
        # xt[n, kh + t] = x[n, t] (its border rows stay zero); the first and the last
        # row of each sample that is not all zero (h and -1: none)
        m, h, c = x.shape
        for n in range(m):
            rows, src = xt[n], x[n]
            for t in range(h):                   # a copy where x is positions-first
                dst, row = rows[kh + t], src[t]
                for ci in range(c):
                    dst[ci] = row[ci]
            a, b = h, -1
            for t in range(h):
                if _nonzero_nb(rows[kh + t]):
                    a = t
                    break
            for t in range(h - 1, a - 1, -1):
                if _nonzero_nb(rows[kh + t]):
                    b = t
                    break
            first[n], last[n] = a, b

    @_jit
    def _ragged_cols_nb(xt, lo, cnt, off, pt, kh, cols):    # pragma: no cover (compiled)
        # cols[off[n] + j] = input rows lo[n] + j - pt .. + kh - 1 of sample n, one
        # contiguous run of xt; the last row zero
        m, _, c = xt.shape
        K = cols.shape[1]
        for n in range(m):
            flat = xt[n].reshape(-1)
            first = (lo[n] - pt + kh) * c
            for j in range(cnt[n]):      # element by element: a slice copy costs seconds to compile
                start = first + j * c
                src, dst = flat[start:start + K], cols[off[n] + j]
                for k in range(K):
                    dst[k] = src[k]
        last = cols[cols.shape[0] - 1]
        for k in range(K):
            last[k] = 0

    # a few microseconds of work: it keeps the GIL (taking it back after would cost more)
    @_numba.njit(cache=True, error_model="numpy")
    def _offsets_first_nb(W, kh, inverse, out):              # pragma: no cover (compiled)
        # out[:, i*c + ci] = W[:, ci*kh + i], or back
        f, K = W.shape
        c = K // kh
        for a in range(f):
            src, dst = W[a], out[a]
            for ci in range(c):
                for i in range(kh):
                    if inverse:
                        dst[ci * kh + i] = src[i * c + ci]
                    else:
                        dst[i * c + ci] = src[ci * kh + i]

    @_jit
    def _ragged_max_nb(y, lo, cnt, off, ho, mx, at, r):      # pragma: no cover (compiled)
        # y (R + 1, f), features contiguous: the first maximum over each sample's rows;
        # the last row (the padding's value) stands for every position left out
        m, f = mx.shape
        R = y.shape[0] - 1
        z = y[R]
        for n in range(m):
            base, k = off[n], cnt[n]
            best, where, col = mx[n], at[n], r[n]
            if k == 0:
                for c in range(f):
                    best[c], where[c], col[c] = z[c], 0, R
                continue
            row = y[base]
            for c in range(f):
                best[c], where[c], col[c] = row[c], lo[n], base
            for j in range(1, k):
                row = y[base + j]
                for c in range(f):            # no branch: the loop vectorises
                    v, b = row[c], best[c]
                    take = (v > b) | ((v != v) & (b == b))
                    best[c] = v if take else b
                    where[c] = lo[n] + j if take else where[c]
                    col[c] = base + j if take else col[c]
            if k < ho:      # the first position left out: 0, or the one after the run
                p0 = 0 if lo[n] > 0 else k
                for c in range(f):
                    v, b = z[c], best[c]
                    if p0 < where[c]:
                        take = not ((b > v) | ((b != b) & (v == v)))
                    else:
                        take = (v > b) | ((v != v) & (b == b))
                    if take:
                        best[c], where[c], col[c] = v, p0, R

    @_jit
    def _ragged_dw_nb(cols, r, g, dW):                       # pragma: no cover (compiled)
        # _sparse_dw_nb's rows loop; the zero row adds nothing and is skipped
        m, f = r.shape
        R = cols.shape[0] - 1
        for n in range(m):
            for c in range(f):
                if r[n, c] == R:
                    continue
                gv, row, dst = g[n, c], cols[r[n, c]], dW[c]
                for q in range(dst.shape[0]):
                    dst[q] += gv * row[q]

    @_jit
    def _ragged_dx_nb(r, g, W, lo, cnt, off, pt, kh, dcols, dx):  # pragma: no cover
        # _sparse_dx_nb's numbers from the rows (W offsets first): each maximum's g*W
        # added to its window's row (the padding's to the last row, its window at p0),
        # then the rows added by offset, each position in order: per value, the offsets
        # in order
        m, f = r.shape
        c, h = dx.shape[0], dx.shape[2]
        R, K = dcols.shape[0] - 1, W.shape[1]
        zero = dx.dtype.type(0)
        loc = np.empty((h, c), dx.dtype)
        zrow = dcols[R]
        for n in range(m):
            base, k = off[n], cnt[n]
            for q in range(K):
                zrow[q] = zero
            padded = False
            for fc in range(f):
                at = r[n, fc]
                padded = padded or at == R
                row, gv, w = dcols[at], g[n, fc], W[fc]
                for q in range(K):
                    row[q] += gv * w[q]
            p0 = 0 if (k == 0 or lo[n] > 0) else k
            loc[:] = zero
            for i in range(kh):
                for j in range(k + 1):
                    if j == k and not padded:
                        break
                    t = (p0 if j == k else lo[n] + j) - pt + i
                    if t < 0 or t >= h:
                        continue
                    src, dst = dcols[R if j == k else base + j], loc[t]
                    for ci in range(c):
                        dst[ci] += src[i * c + ci]
            for ci in range(c):
                d = dx[ci, n]
                for t in range(h):
                    d[t, 0] = loc[t, ci]


def argmax_dtype(k):
    """The smallest unsigned integer type that numbers ``k`` window offsets."""
    return np.uint8 if k <= 256 else np.uint32


def pool_forward(y, k, b, relu, out, arg=None, kernels=None):
    """Max over the ``k`` window offsets of ``y``, then ``out = max + b`` (and ReLU).
    With ``arg`` (training), the offset of each window's first maximum is written there,
    for :func:`pool_route`.

    y: (f, k*L); b: (f,); out: (f, L); arg: (f, L) of :func:`argmax_dtype`; each
    C-contiguous in its rows.
    """
    if k < 2:      # the compiled loop reads two offsets before it checks k
        raise ValueError(f"a pool window of {k} offset(s); need at least 2")
    if arg is not None and (arg.dtype.kind != "u" or np.iinfo(arg.dtype).max < k - 1):
        raise ValueError(f"arg of dtype {arg.dtype} cannot number {k} window offsets; "
                         f"use argmax_dtype({k}) ({np.dtype(argmax_dtype(k))})")
    if (kernels or backend()) == "numba":
        if arg is None:
            _pool_forward_nb(y, k, b, bool(relu), out)
        else:
            _pool_forward_arg_nb(y, k, b, bool(relu), out, arg)
    else:
        _pool_forward_np(y, k, b, relu, out, arg)
    return out


def pool_route(gc, out, arg, k, relu, g, kernels=None):
    """Send each window's gradient to the offset ``arg`` that held its first maximum
    (from :func:`pool_forward`): ``g`` (f, k*L) is ``gc`` there and 0 elsewhere. With
    ``relu``, ``gc`` (f, L) is first zeroed where ``out`` is not positive, in place (so
    that the caller can sum it for the bias gradient)."""
    if (kernels or backend()) == "numba":
        _pool_route_nb(gc, out, arg, k, bool(relu), g)
    else:
        _pool_route_np(gc, out, arg, k, relu, g)
    return g


def grid_from(grad, gq, kernels=None):
    """A fused pair's pooled gradient ``grad`` (m, f, ho, wo), any strides, into its
    layout ``gq`` (f, m, hq, wq) with ``hq >= ho``, ``wq >= wo``: the values at their
    places, zeros in the rows and columns beyond (the junk of the phase layout). One
    pass instead of zeroing and a transposing copy."""
    m, f, ho, wo = grad.shape
    if gq.shape[:2] != (f, m) or gq.shape[2] < ho or gq.shape[3] < wo:
        raise ValueError(f"a gradient {grad.shape} does not fit the layout {gq.shape}")
    if (kernels or backend()) == "numba":
        _grid_from_nb(grad, gq)
    else:
        _grid_from_np(grad, gq)
    return gq


def im2col_phases(x, geometry, out, scratch):
    """numba: the fused pair's im2col (:meth:`gridnet.core.fused.ConvPool._im2col` of
    its ``_phases``, whose numpy code is its twin), the adjoint of
    :func:`col2im_phases`: channel by channel, input chunk ``x`` (m, c, h, w) into its
    zero-padded phase planes ``scratch`` (ph*pw, m*P + tail), then their shifted runs
    into the columns ``out`` (c, S, m*P). Copies only: the same bits as the twin, in one
    call instead of one numpy call per phase and per shift."""
    G = geometry
    _im2col_phases_nb(x, G["shift_array"], G["row_array"], G["col_array"], G["Hq"], G["Wq"],
                      scratch, out)
    return out


def col2im_phases(dcols, geometry, dx, scratch):
    """numba: the fused pair's col2im (:meth:`gridnet.core.fused.ConvPool._col2im`, whose
    numpy code is its twin): scatter-add columns ``dcols`` (c, S, m*P) by the geometry's
    shifts onto one channel's phase planes ``scratch`` (ph*pw, m*P + tail), then write
    their values to their places in ``dx`` (c, m, h, w), channel by channel; places no
    phase holds (a ragged edge) are left as they are. Adds in the order of the shifts,
    as the twin does."""
    G = geometry
    _col2im_phases_nb(dcols, G["shift_array"], G["row_array"], G["col_array"], G["Hq"],
                      G["Wq"], scratch, dx)
    return dx


#: numpy's argmax vectorises rows of this many positions or more, and then beats the
#: compiled loop over an OffsetKernel's layout (docs/benchmarks.md)
FIRST_MAX_ROWS = 32


def global_max(y, mx, at, kernels=None):
    """The maximum of each sample's feature over all positions, and where it is: ``mx``
    (m, f) and ``at`` (m, f), the flat index ``t*w + u`` of the first maximum (in C
    order; the first NaN, if any, as numpy's argmax).

    y: (m, f, h, w), any strides (a convolution's output buffer seen through a view);
    the compiled loops run where the features are contiguous (``y.transpose(0, 2, 3,
    1)`` C-contiguous, as :class:`gridnet.core.conv.WindowKernel` writes it) or the
    samples are within each feature (``y.transpose(1, 0, 2, 3)``, as
    :class:`gridnet.core.conv.OffsetKernel` writes it) and there are fewer than
    :data:`FIRST_MAX_ROWS` positions, numpy's argmax elsewhere (it reads each feature's
    positions as rows).
    """
    m, f, h, w = y.shape
    last = y.transpose(0, 2, 3, 1)
    first = y.transpose(1, 0, 2, 3)
    compiled = (kernels or backend()) == "numba"
    if compiled and last.flags.c_contiguous:
        _global_max_nb(last.reshape(m, h * w, f), mx, at)
    elif compiled and first.flags.c_contiguous and h * w < FIRST_MAX_ROWS:
        _global_max_first_nb(first.reshape(f, m, h * w), mx, at)
    else:
        _global_max_np(y, mx, at)
    return mx, at


def sparse_dw(cols, positions_first, r, g, dW, kernels=None):
    """``dW[f] += sum_n g[n, f] * column(r[n, f])``: the weight gradient of a convolution
    whose output gradient is ``g`` (m, f) at one position per sample and feature, the
    column ``r[n, f]`` of the im2col matrix ``cols`` (a row of ``cols`` (m*P, K) when
    ``positions_first``, else a column of ``cols`` (K, m*P)); ``dW`` (f, K) accumulates,
    over samples in order."""
    if (kernels or backend()) == "numba":
        _sparse_dw_nb(cols, bool(positions_first), r, g, dW)
    else:
        _sparse_dw_np(cols, positions_first, r, g, dW)
    return dW


def sparse_dcols(r, g, W, dcols, positions_first, kernels=None):
    """The adjoint for the columns: ``column(r[n, f]) += g[n, f] * W[f]`` of ``dcols``
    (zeroed by the caller; laid out as :func:`sparse_dw`'s ``cols``), over features in
    order. ``r``'s positions of different samples never coincide."""
    if (kernels or backend()) == "numba":
        _sparse_dcols_nb(r, g, W, dcols, bool(positions_first))
    else:
        _sparse_dcols_np(r, g, W, dcols, positions_first)
    return dcols


def bag_csr(idx, trained, buckets, n, pair_hash, columns, scale, dtype):
    """numba's alone: the canonical csr arrays ``(data, indices, indptr)`` of the
    matrix ``(s, rows)`` that averages each sentence's n-gram rows times ``scale``:
    word index rows ``idx`` ``(s, h)`` hashed as :func:`gridnet.core.bag.ngram_ids`
    hashes them, mapped through ``columns`` (``(buckets,)``, -1: no row; empty: the
    bucket is the row). The same arrays as scipy's ``csr_matrix((weight, (rows,
    ids)))`` (its twin, in :meth:`gridnet.core.NgramBag._mean`): sorted, a repeated
    n-gram's weights added in order."""
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    size = idx.size * 2
    indptr = np.empty(idx.shape[0] + 1, np.int32 if size < 2**31 else np.int64)
    indices = np.empty(size, indptr.dtype)
    data = np.empty(size, dtype)
    nnz = _bag_csr_nb(idx, int(trained), int(buckets), int(n), int(pair_hash[0]),
                      int(pair_hash[1]), columns, float(scale), indptr, indices, data)
    return data[:nnz], indices[:nnz], indptr


def embedding_rows(W, fixed, idx, trained, out):
    """numba's alone: the word vectors of word index rows ``idx`` ``(n, h)`` (-1:
    padding, zeros) into ``out`` ``(n, h, d + f)`` float32: a column's trained vector
    ``W[:, column]`` (``W`` ``(d, trained)`` float32; indices from ``trained`` on take
    column 0's), then its fixed vector ``fixed[word]`` (``(w, f)`` float16) converted as
    numpy converts it. The numbers of :meth:`gridnet.core.Embedding.forward`'s numpy
    lookup (its twin)."""
    if W.dtype != np.float32 or out.dtype != np.float32 or fixed.dtype != np.float16:
        raise TypeError(f"embedding_rows takes float32 W and out and float16 fixed; got "
                        f"{W.dtype}, {out.dtype}, {fixed.dtype}")
    _embedding_rows_nb(W.view(np.uint32), fixed.view(np.uint16), np.ascontiguousarray(idx),
                       int(trained), out.view(np.uint32))
    return out


def bag_dw(M, g, dirty, G):
    """numba's alone: an n-gram table's gradient ``M.T @ g`` into ``G`` ``(rows, dim)``,
    whose rows are zero but for ``dirty`` (set to 0 first): ``M`` the csr ``(n, rows)``
    averaging matrix, ``g`` ``(n, dim)``. The numbers of scipy's product (its twin)."""
    _bag_dw_nb(M.indptr, M.indices, M.data, np.ascontiguousarray(g), dirty, G)
    return G


def embedding_dw(g, cols, pad, dW):
    """numba's alone: an embedding table's gradient ``dW`` (d, trained), zeroed by the
    caller, from the gradient ``g`` (n, d, h) at each position (any strides), the
    position's column ``cols`` (n, h) and ``pad`` (n, h, True: no word). The numbers of
    ``(hot @ g).T`` with the one-hot csr matrix ``hot`` (trained, n*h) (its twin, in
    :meth:`gridnet.core.Embedding.backward`), without making ``g`` contiguous."""
    _embedding_dw_nb(g, np.ascontiguousarray(cols), np.ascontiguousarray(pad), dW)
    return dW


def adam_apply(g, p, wd, m, v, b1, c1, b2, c2, eps, step):
    """numba's alone: one Adam step on the flat parameter ``p`` (in place) from its
    gradient ``g`` (plus ``wd * p`` when ``wd``), moments ``m``, ``v`` updated in place:
    the numbers of :func:`adam_direction` and ``p -= out`` (its twin, with ``g += wd *
    p`` first), in one pass and without gathering the gradients."""
    _adam_apply_nb(g, p, wd, m, v, b1, c1, b2, c2, eps, step)
    return p


def sparse_dx(r, g, W, dx, kernel_size, stride, pads, width):
    """numba's alone: the input gradient of a convolution whose output gradient is
    ``g`` (m, f) at one position ``r`` (m, f) per sample and feature, ``t*width + u``
    (as :func:`sparse_dw`'s columns ``(K, m*P)`` number them in each sample), written
    into ``dx`` ``(c, m, h, w)`` (any strides; every value set). The same numbers as
    :func:`sparse_dcols` into zeroed columns, then :func:`gridnet.core.conv.col2im_offsets`
    and the unpadding (its twin), without the dense columns: ``W`` is ``(f, c*kh*kw)``."""
    (kh, kw), (sh, sw) = kernel_size, stride
    f, c = W.shape[0], dx.shape[0]
    Wt = np.ascontiguousarray(W.reshape(f, c, kh * kw).transpose(2, 0, 1))
    _sparse_dx_nb(np.ascontiguousarray(r), np.ascontiguousarray(g), Wt, dx, int(width),
                  int(sh), int(sw), int(pads[0]), int(pads[2]), int(kw))
    return dx


def ragged_rows(x, kernel_height, pad_top, out_height, xt, kernels=None):
    """Where a ``(kernel_height, 1)`` convolution, stride 1, over ``x`` ``(m, c, h, 1)``
    has a window that holds a nonzero row (a sentence's word; padding rows are zero):
    the run of output positions from the first such window to the last. Writes ``x``
    position by position into ``xt`` ``(m, h + 2*kernel_height, c)``, row ``t`` at
    ``t + kernel_height`` (the caller keeps its other rows zero).

    -> ``(lo, cnt, off)``: sample ``i``'s positions ``lo[i] .. lo[i] + cnt[i] - 1``, at
    rows ``off[i] ..`` of :func:`ragged_columns`' columns (``cnt.sum() + 1`` rows: the
    last, zero, stands for the positions left out, whose output is the convolution of
    zeros)."""
    m = x.shape[0]
    kh, pt = int(kernel_height), int(pad_top)
    first, last = np.empty(m, np.int64), np.empty(m, np.int64)
    fn = _rows_of_nb if (kernels or backend()) == "numba" else _rows_of_np
    # (m, h, c): a plain copy when x is a view of positions-first rows (Embedding's)
    fn(x[..., 0].transpose(0, 2, 1), kh, xt, first, last)
    lo = np.maximum(0, first + pt - kh + 1)
    cnt = np.maximum(0, np.minimum(int(out_height), last + pt + 1) - lo)
    lo[last < 0], cnt[last < 0] = 0, 0
    off = np.zeros(m, np.int64)
    np.cumsum(cnt[:-1], out=off[1:])
    return lo, cnt, off


def ragged_columns(xt, lo, cnt, off, kernel_height, pad_top, cols, kernels=None):
    """The im2col of :func:`ragged_rows`' positions into ``cols`` ``(cnt.sum() + 1,
    kernel_height*c)``: a row per window, its input rows one after the other (the
    weights' columns in :func:`offsets_first` order), then a row of zeros."""
    fn = _ragged_cols_nb if (kernels or backend()) == "numba" else _ragged_cols_np
    fn(xt, lo, cnt, off, int(pad_top), int(kernel_height), cols)
    return cols

def ragged_max(y, lo, cnt, off, out_height, mx, at, r, kernels=None):
    """:func:`global_max` of the convolution whose output at the rows of
    :func:`ragged_columns` is ``y`` ``(R + 1, f)``: ``mx``, ``at`` (the position of the
    first maximum; the positions left out hold the zero row's value) and ``r``, the
    row of ``y`` it came from, all ``(m, f)`` and C-contiguous."""
    fn = _ragged_max_nb if (kernels or backend()) == "numba" else _ragged_max_np
    fn(y, lo, cnt, off, int(out_height), mx, at, r)
    return mx, at, r


def ragged_dw(cols, r, g, dW, kernels=None):
    """:func:`sparse_dw` over :func:`ragged_columns`' rows (``r`` from
    :func:`ragged_max`; ``dW`` in :func:`offsets_first` order), the same sums in the
    same order."""
    (_ragged_dw_nb if (kernels or backend()) == "numba" else _ragged_dw_np)(cols, r, g, dW)
    return dW


def ragged_dx(r, g, W, lo, cnt, off, kernel_height, pad_top, dx, dcols):
    """numba's alone: :func:`sparse_dx` after :func:`ragged_max` (rows ``r``; ``W`` in
    :func:`offsets_first` order), into ``dx`` ``(c, m, h, 1)``: the same numbers (its
    twin, as :func:`sparse_dx`'s, is :func:`sparse_dcols` and col2im), the gradient of
    each window gathered first in its row of ``dcols`` (zeroed by the caller, shaped
    as :func:`ragged_columns`' columns)."""
    _ragged_dx_nb(np.ascontiguousarray(r), np.ascontiguousarray(g), np.ascontiguousarray(W),
                  lo, cnt, off, int(pad_top), int(kernel_height), dcols, dx)
    return dx

def offsets_first(W, kernel_height, inverse=False, kernels=None):
    """A ``(kernel_height, 1)`` convolution's weights ``(f, c*kernel_height)`` with their
    columns in :func:`ragged_columns`' order ``(kernel_height, c)`` (``inverse``: back
    from it), a new C-contiguous array."""
    W = np.ascontiguousarray(W)
    f, kh = W.shape[0], int(kernel_height)
    if (kernels or backend()) == "numba":
        out = np.empty_like(W)
        _offsets_first_nb(W, kh, bool(inverse), out)
        return out
    shape = (f, kh, -1) if inverse else (f, -1, kh)
    return np.ascontiguousarray(W.reshape(shape).transpose(0, 2, 1)).reshape(f, -1)


def adam_direction(g, m, v, b1, c1, b2, c2, eps, step, out, kernels=None):
    """Adam's moments and step, flat arrays of one dtype, the scalars of that dtype:
    ``m = b1*m + c1*g``, ``v = b2*v + c2*g*g`` (in place) and ``out = step * m /
    (sqrt(v) + eps)``, the amount to subtract from the parameters."""
    if (kernels or backend()) == "numba":
        _adam_direction_nb(g, m, v, b1, c1, b2, c2, eps, step, out)
    else:
        _adam_direction_np(g, m, v, b1, c1, b2, c2, eps, step, out)
    return out
