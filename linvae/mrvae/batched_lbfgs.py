r"""L-BFGS on N independent problems at once, every member its own memory and step size.

Member i minimises its own objective ``f_i`` of its own parameters (row i of every
tensor: a leading member axis). Each member keeps its own curvature pairs ``(s, y)``
(tensors of shape (N, m, P)), forms its own L-BFGS direction (batched over members: the
two-loop recursion on the CPU, the compact form elsewhere, :func:`compact_direction`)
and runs its own backtracking Armijo line search: an iteration evaluates ``trials``
trial steps, each for all members at once, and every decision (accept, store a pair,
shrink the step) is a ``torch.where`` on device tensors. The loop has a fixed length: an iteration reads
nothing to the host (no ``float()``, ``.item()``, ``bool()`` of a tensor, no Python
branch on a value), so on a GPU it queues without a synchronisation.

A member that fails all its trials stays where it is and starts the next iteration from
its last trial step times ``shrink`` (the backtracking goes on across iterations). A
trial whose value or gradient is not finite is rejected for its member. A member whose
gradient's largest entry is at most ``tolerance_grad`` takes zero steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch

from linvae._checks import as_int, as_real


@dataclasses.dataclass(frozen=True)
class BatchedResult:
    """What :func:`batched_lbfgs` ends with (device tensors; nothing read to the host).

    values : (N,) each member's objective at its final parameters.
    gradient_max : (N,) the largest entry of each member's gradient there.
    accepted : (N,) how many of the iterations moved each member.
    evaluations : int, evaluations of the objective (with its gradient).
    """

    values: torch.Tensor
    gradient_max: torch.Tensor
    accepted: torch.Tensor
    evaluations: int


def _check_params(params) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence):
        raise TypeError(f"params must be a sequence of tensors, got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError("params must hold at least one tensor")
    for p in params:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params must hold tensors, got {type(p).__name__}")
        if not p.is_floating_point():
            raise TypeError(f"params must be floating-point tensors, got {p.dtype}")
        if p.dim() < 1 or p.shape[0] < 1:
            raise ValueError(f"params need a leading member axis of size ≥ 1, got {p.shape}")
    first = params[0]
    for p in params[1:]:
        if p.shape[0] != first.shape[0]:
            raise ValueError(
                f"params must share the member axis, got {[q.shape[0] for q in params]}"
            )
        if p.dtype != first.dtype or p.device != first.device:
            raise ValueError("params must share one dtype and device")
    return params


def batched_lbfgs(
    objective: Callable[[list[torch.Tensor]], torch.Tensor],
    params: Sequence[torch.Tensor],
    iterations: int,
    *,
    history: int = 50,
    trials: int = 1,
    shrink: float = 0.5,
    armijo: float = 1e-4,
    slack: float = 1e-13,
    tolerance_grad: float = 1e-12,
) -> BatchedResult:
    """Minimise N independent objectives at once; ``params`` are updated in place at the end.

    Parameters
    ----------
    objective : callable
        ``objective(tensors)`` → (N,): member i's objective from row i of each tensor
        (tensors shaped as ``params``); members must be independent, so the gradient of
        the sum is each member's own.
    params : sequence of Tensor
        Floating tensors with the same leading member axis N, dtype and device.
    iterations : int
        Iterations (≥ 0); each evaluates the objective ``trials`` times, plus one at the
        start.
    history : int, default 50
        Curvature pairs kept per member.
    trials : int, default 1
        Trial steps per iteration (1, ``shrink``, ``shrink²``, … times the member's step).
    shrink : float in (0, 1), default 0.5
    armijo : float in (0, 1), default 1e-4
        Sufficient decrease: accept ``f(x + t d) ≤ f(x) + armijo·t·∇f·d``.
    slack : float ≥ 0, default 1e-13
        Also accept a step that raises f by at most ``slack·|f|`` (round-off) if the slope
        along d went from φ'(0) < 0 to within [0.9 φ'(0), −0.8 φ'(0)] (Hager and Zhang's
        approximate Wolfe conditions): near the minimiser f's change is round-off and
        the gradient still knows the way.
    tolerance_grad : float ≥ 0, default 1e-12
        A member whose gradient's largest entry is at most this takes zero steps.

    Returns
    -------
    BatchedResult
    """
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    params = _check_params(params)
    iterations = as_int(iterations, "iterations", minimum=0)
    history = as_int(history, "history", minimum=1)
    trials = as_int(trials, "trials", minimum=1)
    shrink, armijo = as_real(shrink, "shrink"), as_real(armijo, "armijo")
    tolerance_grad = as_real(tolerance_grad, "tolerance_grad")
    slack = as_real(slack, "slack")
    if slack < 0:
        raise ValueError(f"slack must be ≥ 0, got {slack}")
    if not 0.0 < shrink < 1.0:
        raise ValueError(f"shrink must lie in (0, 1), got {shrink}")
    if not 0.0 < armijo < 1.0:
        raise ValueError(f"armijo must lie in (0, 1), got {armijo}")
    if not (tolerance_grad >= 0.0 and math.isfinite(tolerance_grad)):
        raise ValueError(f"tolerance_grad must be finite and ≥ 0, got {tolerance_grad}")

    N = params[0].shape[0]
    shapes = [p.shape[1:] for p in params]
    sizes = [math.prod(s) for s in shapes]

    def unflatten(x: torch.Tensor) -> list[torch.Tensor]:
        return [c.reshape(N, *s) for c, s in zip(x.split(sizes, dim=1), shapes, strict=True)]

    def value_and_gradient(x: torch.Tensor):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            value = objective(unflatten(x))
            if not isinstance(value, torch.Tensor) or value.shape != (N,):
                shape = getattr(value, "shape", type(value).__name__)
                raise ValueError(f"objective must return a tensor of shape ({N},), got {shape}")
            (gradient,) = torch.autograd.grad(value.sum(), x)
        return value.detach(), gradient

    with torch.no_grad():
        x = torch.cat([p.detach().reshape(N, -1) for p in params], dim=1)
    f, g = value_and_gradient(x)
    evaluations = 1
    with torch.no_grad():
        state = _State.start(x, g, history, compact=compact_direction(x.device))
        for _ in range(iterations):
            x, f, g = state.iterate(x, f, g, value_and_gradient, trials, shrink, armijo,
                                    slack, tolerance_grad)  # fmt: skip
            evaluations += trials
        for p, new in zip(params, unflatten(x), strict=True):
            p.copy_(new)
        return BatchedResult(f, g.abs().amax(dim=1), state.accepted, evaluations)


def compact_direction(device: torch.device) -> bool:
    """Whether :func:`batched_lbfgs` forms its directions in the compact form on ``device``:
    off the CPU. With 50 pairs the compact form issues 48 top-level tensor operations a
    direction and 53 to store a pair (with ``bmm``), the two-loop recursion 457 and 36 (on
    a GPU, kernel launches), but the compact form reads the pairs 7 times an iteration, the
    recursion 4. On the CPU, one thread, ms an iteration on a diagonal quadratic
    (recursion / compact, two runs): N = 1, P = 4200: 1.73 / 0.97 and 1.90 / 1.10;
    N = 1, P = 51000: 9.81 / 10.71 and 8.14 / 9.68; N = 10, P = 4200: 7.59 / 9.58 and
    8.76 / 12.63; the bank's polish on digits (N = 10, 3052 iterations) 37.0 s by the
    recursion, 42.8 s compact."""
    return torch.device(device).type != "cpu"


def _matvec(A: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Each member's ``A_n x_n``: A (N, r, c), x (N, c) → (N, r). ``torch.bmm`` off the
    CPU; on it a ``torch.mv`` per member, a BLAS gemv: torch's CPU ``bmm`` of an (N, m, P)
    by an (N, P, 1) ran 4.6× slower than N ``mv`` (N = 10, m = 50, P = 4200, one thread)."""
    if A.device.type != "cpu":
        return torch.bmm(A, x.unsqueeze(2)).squeeze(2)
    return torch.stack([torch.mv(a, v) for a, v in zip(A, x, strict=True)])


@dataclasses.dataclass
class _State:
    """Per-member memory in a ring shared by the members (slot ``stored % m``, a host
    count): a member that stores no pair at an iteration fills its slot with (0, 0) and
    ρ = 0, a pair the direction passes over; γ is each member's initial scaling, ``step``
    its next trial step, ``accepted`` its count of iterations that moved it. ``SY`` and
    ``YY`` hold each member's ``s_iᵀ y_j`` and ``y_iᵀ y_j`` in slot order, a row and a
    column written with each pair (``compact`` only: :meth:`direction`'s compact form)."""

    S: torch.Tensor  # (N, m, P)
    Y: torch.Tensor  # (N, m, P)
    SY: torch.Tensor  # (N, m, m)
    YY: torch.Tensor  # (N, m, m)
    rho: torch.Tensor  # (N, m)
    gamma: torch.Tensor  # (N,)
    step: torch.Tensor  # (N,)
    accepted: torch.Tensor  # (N,) long
    stored: int = 0  # iterations so far: slots written
    compact: bool = True  # the direction in the compact form (else the two-loop recursion)

    @classmethod
    def start(cls, x: torch.Tensor, g: torch.Tensor, m: int, compact: bool = True) -> _State:
        N, P = x.shape
        zeros = x.new_zeros((N, m, P))
        small = x.new_zeros((N, m, m) if compact else (N, 0, 0))
        # the first step as torch's L-BFGS takes it: min(1, 1/‖g‖₁) along −g
        gamma = torch.clamp(1.0 / g.abs().sum(dim=1), max=1.0)
        gamma = torch.where(torch.isfinite(gamma), gamma, torch.ones_like(gamma))
        return cls(zeros, zeros.clone(), small, small.clone(), x.new_zeros((N, m)), gamma,
                   torch.ones_like(gamma), torch.zeros(N, dtype=torch.long, device=x.device),
                   compact=compact)  # fmt: skip

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """−H g, H each member's L-BFGS inverse Hessian of its stored pairs (ρ = 0: none),
        in Byrd, Nocedal and Schnabel's compact form (1994, eq. 3.1 with H₀ = γI):
        ``H g = γg + S p − γ Y R⁻¹a``, ``p = R⁻ᵀ((D + γYᵀY) R⁻¹a − γ Yᵀg)``, ``a = Sᵀg``,
        R the upper triangle of ``SᵀY`` in the pairs' order, D its diagonal: the two-loop
        recursion's result to round-off (:meth:`_two_loop`, without ``compact``) in a
        fixed number of tensor operations whatever the memory (:func:`compact_direction`)."""
        if self.stored == 0:
            return -self.gamma.unsqueeze(1) * g
        if not self.compact:
            return self._two_loop(g)
        m = self.S.shape[1]
        shift = -(self.stored % m) if self.stored >= m else 0  # slot order → oldest first
        gamma = self.gamma.view(-1, 1, 1)
        a = _matvec(self.S, g).unsqueeze(2).roll(shift, 1)  # (N, m, 1), oldest pair first
        b = _matvec(self.Y, g).unsqueeze(2).roll(shift, 1)
        SY = self.SY.roll((shift, shift), (1, 2))
        YY = self.YY.roll((shift, shift), (1, 2))
        empty = (self.rho == 0).roll(shift, 1)  # a slot of (0, 0): 1 on R's diagonal
        R = SY.triu() + torch.diag_embed(empty.to(g.dtype))
        u = torch.linalg.solve_triangular(R, a, upper=True)  # R⁻¹a
        w = SY.diagonal(dim1=1, dim2=2).unsqueeze(2) * u + gamma * (torch.bmm(YY, u) - b)
        p = torch.linalg.solve_triangular(R.mT, w, upper=False)
        p, u = p.roll(-shift, 1), u.roll(-shift, 1)  # back to slot order
        p, u = p.squeeze(2), u.squeeze(2)
        Hg = self.gamma.unsqueeze(1) * g + _matvec(self.S.mT, p)
        return Hg.sub_(self.gamma.unsqueeze(1) * _matvec(self.Y.mT, u)).neg_()

    def _two_loop(self, g: torch.Tensor) -> torch.Tensor:
        """−H g by each member's two-loop recursion, newest pair first (ρ = 0: no pair)."""
        m = self.S.shape[1]
        slots = [(self.stored - 1 - i) % m for i in range(min(self.stored, m))]
        S, Y, rho = self.S.unbind(1), self.Y.unbind(1), self.rho.unbind(1)  # views by slot
        q, alphas = g.clone(), []
        for slot in slots:
            alpha = rho[slot] * torch.linalg.vecdot(S[slot], q)
            q.addcmul_(alpha.unsqueeze(1), Y[slot], value=-1.0)
            alphas.append(alpha)
        r = self.gamma.unsqueeze(1) * q
        for slot, alpha in zip(reversed(slots), reversed(alphas), strict=True):
            beta = rho[slot] * torch.linalg.vecdot(Y[slot], r)
            r.addcmul_((alpha - beta).unsqueeze(1), S[slot])
        return r.neg_()

    def iterate(self, x, f, g, value_and_gradient, trials, shrink, armijo, slack, tolerance_grad):
        d = self.direction(g)
        slope = (g * d).sum(dim=1)
        steepest = -self.gamma.unsqueeze(1) * g
        uphill = ~(slope < 0)  # not a descent direction (or NaN): scaled −g instead
        d = torch.where(uphill.unsqueeze(1), steepest, d)
        slope = torch.where(uphill, (g * steepest).sum(dim=1), slope)
        done = g.abs().amax(dim=1) <= tolerance_grad
        d = torch.where(done.unsqueeze(1), torch.zeros_like(d), d)
        slope = torch.where(done, torch.zeros_like(slope), slope)

        searching = torch.ones_like(done)
        new_x, new_f, new_g, step = x, f, g, self.step
        for j in range(trials):
            trial_x = x + step.unsqueeze(1) * d
            with torch.enable_grad():
                trial_f, trial_g = value_and_gradient(trial_x)
            finite = torch.isfinite(trial_f) & torch.isfinite(trial_g).all(dim=1)
            decrease = trial_f <= f + armijo * step * slope
            # Hager and Zhang's approximate Wolfe test, for steps whose change of f is
            # round-off: f no more than `slack`·|f| higher, the slope along d shrunk
            trial_slope = (trial_g * d).sum(dim=1)
            approximate = (trial_f <= f + slack * f.abs()) & (trial_slope >= 0.9 * slope)
            approximate = approximate & (trial_slope <= -0.8 * slope) & (slope < 0)
            ok = searching & finite & (decrease | approximate)
            new_x = torch.where(ok.unsqueeze(1), trial_x, new_x)
            new_f = torch.where(ok, trial_f, new_f)
            new_g = torch.where(ok.unsqueeze(1), trial_g, new_g)
            searching = searching & ~ok
            if j + 1 < trials:
                step = torch.where(searching, step * shrink, step)
        moved = ~searching
        self.step = torch.where(moved, torch.ones_like(step), step * shrink)
        self.accepted = self.accepted + moved.long()
        self._remember(new_x - x, new_g - g, moved)
        return new_x, new_f, new_g

    def _remember(self, s, y, moved):
        """Store (s, y) for members that moved with positive curvature sᵀy, (0, 0) and
        ρ = 0 for the others."""
        sy = torch.linalg.vecdot(s, y)
        yy = torch.linalg.vecdot(y, y)
        ss = torch.linalg.vecdot(s, s)
        keep = moved & (sy > 1e-10 * torch.sqrt(ss) * torch.sqrt(yy)) & (yy > 0)
        slot = self.stored % self.S.shape[1]
        column = keep.unsqueeze(1)
        s = torch.where(column, s, torch.zeros_like(s))
        y = torch.where(column, y, torch.zeros_like(y))
        self.S[:, slot] = s
        self.Y[:, slot] = y
        if self.compact:
            self.SY[:, slot] = _matvec(self.Y, s)  # s_newᵀ y_j
            self.SY[:, :, slot] = _matvec(self.S, y)  # s_iᵀ y_new
            yy_new = _matvec(self.Y, y)
            self.YY[:, slot] = yy_new
            self.YY[:, :, slot] = yy_new
        safe = torch.where(keep, sy, torch.ones_like(sy))
        self.rho[:, slot] = torch.where(keep, 1.0 / safe, torch.zeros_like(sy))
        safe_yy = torch.where(keep, yy, torch.ones_like(yy))
        self.gamma = torch.where(keep, sy / safe_yy, self.gamma)
        self.stored += 1
