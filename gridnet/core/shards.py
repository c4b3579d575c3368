"""A batch run as shards, side by side on the threads numpy's BLAS may use.

Much of a convolutional network's time goes to passes over memory that run on one core
(the im2col of a fused convolution and pool, the pooling, their backward passes); only
the matmuls use more. A batch is therefore cut into shards of near-equal size, each run
through its own replica of the network's steps (the same parameter arrays; its own
caches and work buffers), the shards taking turns on as many threads as the BLAS is
allowed, each matmul on one. The per-sample results are the unsharded network's; the
parameter gradients are the shards' sums, added in shard order.

A shard holds at least :data:`SHARD_SAMPLES` samples and :data:`SHARD_BYTES` of such
columns (:meth:`gridnet.core.fused.ConvPool.column_bytes`), and there are at most
:data:`MAX_SHARDS`; a smaller batch, or a network without those passes (a sentence
CNN's matmuls already use every thread), runs unsharded, as before. How a batch is
cut depends on the batch's size and the network only, never on the number of threads:
the same seed gives the same weights, to the bit, on one thread or on many (which
costs this: on one thread, net A's sharded step takes about 10% longer than its
unsharded one). The thread count follows the BLAS's own setting, so that
``threadpoolctl.threadpool_limits(1)`` (or ``OPENBLAS_NUM_THREADS=1``) runs the shards
one after the other on the calling thread. While shards run on several threads the BLAS
is held at one thread (a process-wide setting, restored afterwards): its own threads
would otherwise spin on the cores the shards need. Right after numpy's BLAS ran a
matmul on several threads, its threads still spin for about 0.1 s and slow the shards
(the audio preset's sharded steps by about a quarter over the next 10).
"""
from __future__ import annotations

import copy
import os

from .stack import leaves

__all__ = ["SHARD_SAMPLES", "SHARD_BYTES", "MAX_SHARDS", "shard_slices", "column_bytes",
           "Sharding"]

#: the fewest samples a shard holds (fewer, and the threads' overhead outweighs the work;
#: the measurements are in docs/benchmarks.md, "Constants chosen by measurement")
SHARD_SAMPLES = 32
#: the fewest bytes of im2col columns a shard makes (below, the threads' overhead won)
SHARD_BYTES = 4 * 2**20
#: at most this many shards (and replicas) however large the batch
MAX_SHARDS = 8


def shard_slices(n, per_sample=None):
    """The shards of a batch of ``n`` samples whose columns take ``per_sample`` bytes a
    sample (None: not counted): ``ceil(n / SHARD_SAMPLES)`` slices, fewer where a shard
    would make less than :data:`SHARD_BYTES` of columns, at most :data:`MAX_SHARDS`, at
    least one; of near-equal size, the larger first.

    >>> shard_slices(64)
    [slice(0, 32, None), slice(32, 64, None)]
    >>> shard_slices(70)
    [slice(0, 24, None), slice(24, 47, None), slice(47, 70, None)]
    >>> shard_slices(64, per_sample=45_000)       # 2.9 MB in all: one shard
    [slice(0, 64, None)]
    """
    k = min(MAX_SHARDS, -(-int(n) // SHARD_SAMPLES))
    if per_sample is not None and SHARD_BYTES > 0:
        k = min(k, int(n) * int(per_sample) // SHARD_BYTES)
    k = max(1, k)
    size, extra = divmod(int(n), k)
    out, start = [], 0
    for i in range(k):
        stop = start + size + (i < extra)
        out.append(slice(start, stop))
        start = stop
    return out


def column_bytes(steps):
    """Bytes of im2col columns a sample makes in ``steps`` (a network's plan, the
    branches' included): the work that shards spread over the threads."""
    total = 0
    for step in steps:
        if hasattr(step, "column_bytes"):
            total += step.column_bytes()
        for branch in getattr(step, "steps", None) or ():
            total += column_bytes(branch)
    return total


class Sharding:
    """The replicas of a network's layers and the threads that run its shards.

    Made by :class:`~gridnet.core.network.Network` for its ``layers``; replica 0 is the
    network's own steps. Not part of a pickled network.
    """

    def __init__(self, layers, steps, plan):
        self.layers = layers
        self.plan = plan
        #: bytes of columns a sample makes in the network's steps (:func:`column_bytes`)
        self.column_bytes = column_bytes(steps)
        self._replicas = []        # [(layers, steps)] for shards 1, 2, ...
        self._made_of = None           # what the replicas were copied from (see steps)
        self._pool = None
        self._workers = 0
        self._pid = None
        self._controller = None

    # -- replicas ----------------------------------------------------------------------
    def replicas(self, k, steps):
        """Replicas 0 .. k-1 as ``(layers, steps)``, the network's own (its ``steps``)
        first."""
        own = list(leaves(self.layers))
        # (the fixed buffers too: shared, like the parameters, never copied)
        params = [p for layer in own
                  for p in (*layer.params.values(), *getattr(layer, "buffers", {}).values())]
        # what the replicas were copied from: the parameter arrays (rebuilt or replaced?)
        # and each layer's configuration (a dropout rate set to 0 for an explanation)
        made_of = ([id(p) for p in params],
                   [(type(layer), layer.get_config()) for layer in own
                    if not hasattr(layer, "branches")])
        if made_of != self._made_of:    # start again
            self._replicas, self._made_of = [], made_of
        while len(self._replicas) < k - 1:
            # the same parameter arrays (updated in place by the optimizers), the rest
            # copied: caches, work buffers (empty: not part of a layer's state), grads
            layers = copy.deepcopy(self.layers, {id(p): p for p in params})
            self._replicas.append((layers, self.plan(layers)))
        out = [(self.layers, steps)] + self._replicas[:k - 1]
        for _, rep in out[1:]:
            _same_kernels(steps, rep)
        return out

    @staticmethod
    def reseed(replicas):
        """Give the dropout layers of ``replicas`` but the first generators of their own,
        spawned from the first's (before a training pass: each shard its own masks)."""
        for layers, _ in replicas[1:]:
            for own, rep in zip(leaves(replicas[0][0]), leaves(layers)):
                rng = own.child_rng() if hasattr(own, "child_rng") else None
                if rng is not None:
                    rep.set_rng(rng)

    @staticmethod
    def sum_grads(replicas):
        """Each parameter's gradient: the sum over ``replicas``, in order, into the first's
        layers (the network's own; the others' arrays are left as they are)."""
        own = list(leaves(replicas[0][0]))
        reps = [list(leaves(layers)) for layers, _ in replicas[1:]]
        for i, layer in enumerate(own):
            if hasattr(layer, "branches"):      # Branches: its layers' arrays, summed below
                continue
            for key in layer.params:
                total = layer.grads[key]
                if not total.flags.owndata:     # (a view of a work buffer: left alone)
                    total = total.copy()
                for rep in reps:                # this backward pass's own arrays: in place
                    total += rep[i].grads[key]
                layer.grads[key] = total
        for layer in reversed(own):             # Branches expose their layers' grads
            if hasattr(layer, "branches"):
                layer.collect()

    # -- threads -----------------------------------------------------------------------
    def _blas(self):
        if self._controller is None:       # ~0.6 ms: once
            from threadpoolctl import ThreadpoolController
            self._controller = ThreadpoolController()
        return self._controller

    def threads(self):
        """How many threads the BLAS may use now (1 when none is found)."""
        counts = [c.num_threads for c in self._blas().lib_controllers if c.user_api == "blas"]
        return max(counts, default=1)

    def run(self, tasks):
        """Call each of ``tasks`` (no arguments) once; their results in order. On one
        thread when the BLAS has one; else the calling thread and up to ``threads() - 1``
        workers take the tasks in turn, with the BLAS held at one thread meanwhile."""
        t = min(self.threads(), len(tasks))
        if t <= 1:
            return [task() for task in tasks]
        if self._workers < t - 1 or self._pid != os.getpid():
            # (a forked child has the pool but not its threads: a new one)
            from concurrent.futures import ThreadPoolExecutor
            self.close()
            self._pool = ThreadPoolExecutor(t - 1, thread_name_prefix="gridnet-shard")
            self._workers, self._pid = t - 1, os.getpid()
        results = [None] * len(tasks)
        order = iter(range(len(tasks)))         # each index taken once (the GIL)

        def work():
            for i in order:
                results[i] = tasks[i]()

        with self._blas().limit(limits=1, user_api="blas"):
            futures = [self._pool.submit(work) for _ in range(t - 1)]
            try:
                work()
            finally:
                for f in futures:           # all finished before the BLAS is released
                    f.exception()
            for f in futures:
                f.result()                  # a worker's error, raised here
        return results

    def close(self):
        if self._pool is not None and self._pid == os.getpid():
            self._pool.shutdown(wait=False)
        self._pool, self._workers = None, 0


def _same_kernels(steps, rep):
    """A replica's fused steps use the kernels chosen on the network's own (an
    instance's ``kernels``, as the tests set it)."""
    for own, other in zip(steps, rep):
        if "kernels" in own.__dict__ or "kernels" in other.__dict__:
            other.kernels = own.kernels
        for a, b in zip(getattr(own, "steps", None) or (), getattr(other, "steps", None) or ()):
            _same_kernels(a, b)
