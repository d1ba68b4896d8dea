"""The training step, eager or compiled: ``torch.compile``, CUDA graphs, clean fallbacks.

:func:`compiled_step` turns a loss function into the step of
:func:`linvae.mrvae.train.train` (the loss, its backward pass, the loss returned
detached), compiling the loss where asked: ``torch.compile`` traces the forward pass and
derives the backward one (AOTAutograd), so ``backward()`` stays outside the traced code. Nothing here changes the
mathematics: a compiled step computes the loss and the gradients of the eager one, up to
the order of floating-point reductions (tested in float64 to 1e-12).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch

Loss = Callable[..., torch.Tensor]
Step = Callable[..., torch.Tensor]


def _eager(loss: Loss) -> Step:
    def step(*tensors: torch.Tensor) -> torch.Tensor:
        value = loss(*tensors)
        value.backward()
        return value.detach()

    return step


@contextlib.contextmanager
def _torch_deprecations_ignored():
    """Ignore torch's own deprecation notices while dynamo traces and inductor lowers.

    torch 2.13 emits them from its internals (``torch.jit.script_method`` on importing
    inductor, autograd.Function instantiation, ``_prims_common.check``), not from our code.
    Also ignored: "The CUDA Graph is empty", which torch 2.11 warns when its CUDA-graph tree
    manager starts (it captures an empty graph to set up its memory pool; seen on an H200).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "The CUDA Graph is empty", UserWarning)
        yield


def _compiler_failed(error: BaseException) -> bool:
    """True for the errors of a compiler that could not run (no C compiler, an unsupported op)."""
    names = {type(e).__name__ for e in (error, error.__cause__) if e is not None}
    return bool(
        names & {"BackendCompilerFailed", "InductorError", "Unsupported", "CompilationError"}
    ) or type(error).__module__.startswith(("torch._dynamo", "torch._inductor"))


def compiled_step(
    loss: Loss,
    mode: str,
    device: torch.device,
    parameters,
    *,
    backend: str = "inductor",
) -> Step:
    """The step ``loss(*tensors).backward()``, with ``loss`` compiled as ``mode`` asks.

    Parameters
    ----------
    loss : callable
        ``loss(*tensors)``: the scalar loss to minimise, differentiable in the parameters.
    mode : {"none", "compile", "graph"}
        ``"none"``: eager. ``"compile"``: ``torch.compile(loss)``. ``"graph"``:
        ``torch.compile(loss, mode="reduce-overhead")``, which replays CUDA graphs on a
        CUDA device; on any other device a :class:`RuntimeWarning` says so and the step
        runs eagerly.
    device : torch.device
        Where the step runs.
    parameters : iterable of Tensor
        The model's parameters: their gradients are cleared before an eager retry.
    backend : str, default "inductor"
        The ``torch.compile`` backend (tests use ``"aot_eager"``, which compiles in seconds).

    Returns
    -------
    callable
        ``step(*tensors)``: computes the loss, calls ``backward()`` on it and returns it
        detached (a scalar tensor, left on the device: no synchronisation). If the first
        compiled call fails because the compiler cannot run (for instance without a C compiler), a :class:`RuntimeWarning`
        names the error and this and every later call runs eagerly.
    """
    step = _eager(loss)
    if not compiles(mode, device):
        return step
    with _torch_deprecations_ignored():
        compiled = _eager(torch.compile(loss, backend=backend, dynamic=False, **options_of(mode)))
    parameters = list(parameters)

    def clear_gradients():  # a failed compiled backward may have left some behind
        for parameter in parameters:
            parameter.grad = None

    return with_eager_fallback(compiled, step, mode, clear_gradients)


def compiles(mode: str, device: torch.device) -> bool:
    """Whether ``mode`` compiles on ``device``: not ``"none"``, and ``"graph"`` only on CUDA
    (elsewhere a :class:`RuntimeWarning` says the step runs eagerly)."""
    if mode == "graph" and device.type != "cuda":
        warnings.warn(
            f"compile='graph' needs a CUDA device (CUDA graphs), training runs on {device}: "
            "the step runs eagerly",
            RuntimeWarning,
            stacklevel=4,
        )
        return False
    return mode != "none"


def options_of(mode: str) -> dict:
    """``torch.compile``'s options for ``mode``: CUDA graphs are its "reduce-overhead"."""
    return {"mode": "reduce-overhead"} if mode == "graph" else {}


def with_eager_fallback(compiled: Callable, eager: Callable, mode: str, reset=None) -> Callable:
    """``compiled``, or ``eager`` for good once its first call fails to compile.

    Only a compiler that cannot run is absorbed (:func:`_compiler_failed`): one
    :class:`RuntimeWarning`, ``reset()`` (if given), and every call from then on is
    ``eager``'s. With ``mode="graph"`` each call marks a new CUDA-graph step.
    """
    state = {"first": True, "eager": False}

    def run(*args):
        if state["eager"]:
            return eager(*args)
        if mode == "graph":
            torch.compiler.cudagraph_mark_step_begin()  # each call is a new training step
        if not state["first"]:
            return compiled(*args)
        state["first"] = False
        try:
            with _torch_deprecations_ignored():
                return compiled(*args)
        except Exception as error:  # only compiler failures are absorbed, below
            if not _compiler_failed(error):
                raise
            first_line = (str(error).splitlines() or [""])[0]
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}: {first_line}); "
                "the step runs eagerly",
                RuntimeWarning,
                stacklevel=2,
            )
            state["eager"] = True
            if reset is not None:
                reset()
            return eager(*args)

    return run
