"""The CPU threads of a training run: torch's intra-op pool and numpy's BLAS, held together.

The recipe forms its large products through numpy's BLAS on the CPU
(:func:`linvae.mrvae._step.step_products`), whose threads torch's
``set_num_threads`` does not set: a run asked for one thread would use every core in
those products and report their CPU time.
"""

from __future__ import annotations

import contextlib

import torch


def set_cpu_threads(threads: int) -> None:
    """torch's intra-op threads and numpy's BLAS threads set to ``threads``, for good."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads, user_api="blas")


@contextlib.contextmanager
def cpu_threads(threads: int):
    """torch's intra-op threads and numpy's BLAS threads set to ``threads`` inside, both
    restored after."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)
