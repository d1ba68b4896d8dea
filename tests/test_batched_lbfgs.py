"""The batched L-BFGS: each member to its own minimiser, as if alone, non-finite trials
rejected member by member, no host read while it runs, and its arguments checked."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import linvae.mrvae.batched_lbfgs as module
from linvae.mrvae.batched_lbfgs import _State, batched_lbfgs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True, params=["two-loop", "compact"])
def direction_form(request, monkeypatch):
    """Every test with each form of the direction: the CPU's (the two-loop recursion) and
    the one taken off the CPU (the compact form)."""
    compact = request.param == "compact"
    monkeypatch.setattr(module, "compact_direction", lambda device: compact)
    return request.param


#: Curvature scales of the members: twelve decades apart, each spread over three.
SCALES = [1e-3, 1.0, 1e3, 1e6, 1e9]


def _quadratics(P=12, seed=0):
    """Members ½xᵀA_i x − b_iᵀx, A_i's eigenvalues SCALES[i]·(1 … 1000)."""
    generator = torch.Generator().manual_seed(seed)
    A = []
    for scale in SCALES:
        Q, _ = torch.linalg.qr(torch.randn(P, P, generator=generator, dtype=torch.float64))
        A.append(Q @ torch.diag(torch.logspace(0, 3, P, dtype=torch.float64) * scale) @ Q.T)
    A = torch.stack(A)
    b = torch.randn(len(SCALES), P, generator=generator, dtype=torch.float64)
    return A, b


def _objective(A, b):
    def objective(tensors):
        x = tensors[0]
        return 0.5 * torch.einsum("np,npq,nq->n", x, A, x) - (b * x).sum(1)

    return objective


def test_members_of_very_different_curvature_each_reach_their_minimiser():
    A, b = _quadratics()
    x = torch.zeros_like(b)
    result = batched_lbfgs(_objective(A, b), [x], 300)
    minimiser = torch.linalg.solve(A, b)
    error = (x - minimiser).norm(dim=1) / minimiser.norm(dim=1)
    assert torch.all(error < 1e-11), error  # cond(A_i) = 1000: round-off's scale
    assert result.evaluations == 301
    assert torch.all(result.accepted > 0)


def test_a_member_moves_as_it_would_alone():
    A, b = _quadratics(seed=1)
    together = torch.zeros_like(b)
    batched_lbfgs(_objective(A, b), [together], 12, trials=2)
    for i in range(len(SCALES)):
        alone = torch.zeros_like(b[i : i + 1])
        batched_lbfgs(_objective(A[i : i + 1], b[i : i + 1]), [alone], 12, trials=2)
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-12, atol=0.0)


def test_params_of_several_shapes_move_together_and_in_place():
    A, b = _quadratics(P=6)
    first, second = torch.zeros(len(SCALES), 2, 2, dtype=torch.float64), torch.zeros(5, 2)
    second = second.double()

    def objective(tensors):
        x = torch.cat([tensors[0].reshape(len(SCALES), 4), tensors[1]], dim=1)
        return _objective(A, b)([x])

    batched_lbfgs(objective, [first, second], 300)
    minimiser = torch.linalg.solve(A, b)
    x = torch.cat([first.reshape(len(SCALES), 4), second], dim=1)
    torch.testing.assert_close(x, minimiser, rtol=1e-10, atol=0.0)


def test_a_non_finite_trial_is_rejected_for_its_member_only():
    """Member 1 is ``a·x − log x``: its first step (to x = 0) is −log 0 = inf, later ones
    may cross to x < 0 (NaN). It must still reach 1/a; member 0 is untouched by it."""
    seen = []

    def objective(tensors):
        x = tensors[0][:, 0]
        value = torch.stack([(x[0] - 3.0) ** 2, 100.0 * x[1] - torch.log(x[1])])
        seen.append(value.detach().clone())
        return value

    x = torch.ones(2, 1, dtype=torch.float64)
    result = batched_lbfgs(objective, [x], 100)
    assert any(not torch.isfinite(v[1]) for v in seen)  # trials did go non-finite
    assert all(torch.isfinite(v[0]) for v in seen)
    torch.testing.assert_close(x[:, 0], torch.tensor([3.0, 0.01], dtype=torch.float64))
    assert torch.all(torch.isfinite(result.values))


def test_a_member_at_its_minimiser_takes_zero_steps():
    A, b = _quadratics(P=4)
    x = torch.zeros_like(b)
    with torch.no_grad():
        x[2] = torch.linalg.solve(A[2], b[2])
        b[2] = A[2] @ x[2]  # its gradient exactly 0 at x[2]
    start = x[2].clone()
    batched_lbfgs(_objective(A, b), [x], 20, tolerance_grad=1e-6)
    assert torch.equal(x[2], start)


class _HostReads(TorchDispatchMode):
    """Raises on the operations that read a tensor's value to the host (``item``,
    ``float``, ``bool``, ``int`` all go through ``_local_scalar_dense``) or whose output
    shape depends on values (``nonzero``, boolean-mask indexing)."""

    BANNED = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "is_nonzero")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        if name in self.BANNED:
            raise AssertionError(f"host read: {func}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("read", [float, bool, lambda t: t.item(), lambda t: t[t > 0]])
def test_the_host_read_check_catches_a_read(read):
    with pytest.raises(AssertionError, match="host read"), _HostReads():
        read(torch.tensor([1.0], dtype=torch.float64).sum() + 1.0)


def test_no_iteration_reads_a_value_to_the_host():
    """The whole run under a dispatch mode that raises on any host read: the objective is
    sync-free, so a read could only come from the optimiser (non-finite trials included)."""
    A, b = _quadratics(P=5)
    x = torch.zeros_like(b)
    with _HostReads():
        result = batched_lbfgs(_objective(A, b), [x], 60, trials=3)
    assert result.evaluations == 1 + 60 * 3
    minimiser = torch.linalg.solve(A, b)
    assert torch.all((x - minimiser).norm(dim=1) < 1e-10 * minimiser.norm(dim=1))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"objective": 3}, TypeError, "objective"),
        ({"params": torch.zeros(2, 3)}, TypeError, "params"),
        ({"params": []}, ValueError, "params"),
        ({"params": [torch.zeros(2, 3, dtype=torch.long)]}, TypeError, "params"),
        ({"params": [torch.zeros(2, 3), torch.zeros(3, 1)]}, ValueError, "params"),
        ({"params": [torch.zeros(())]}, ValueError, "params"),
        ({"iterations": -1}, ValueError, "iterations"),
        ({"iterations": 2.0}, TypeError, "iterations"),
        ({"history": 0}, ValueError, "history"),
        ({"trials": 0}, ValueError, "trials"),
        ({"shrink": 1.0}, ValueError, "shrink"),
        ({"armijo": 0.0}, ValueError, "armijo"),
        ({"slack": -1.0}, ValueError, "slack"),
        ({"tolerance_grad": float("nan")}, ValueError, "tolerance_grad"),
        ({"objective": lambda t: t[0].sum()}, ValueError, "objective must return"),
    ],
)
def test_arguments_are_checked(kwargs, error, match):
    arguments = {"objective": lambda t: t[0].square().sum(1), "params": [torch.zeros(2, 3)],
                 "iterations": 2, **kwargs}  # fmt: skip
    objective, params = arguments.pop("objective"), arguments.pop("params")
    with pytest.raises(error, match=match):
        batched_lbfgs(objective, params, **arguments)


def _two_loop(S, Y, rho, gamma, order):
    """−H g's reference: the two-loop recursion of one member over its pairs ``order``
    (slots, newest first), a pair of ρ = 0 passed over."""

    def apply(g):
        q, alphas = g.clone(), []
        for i in order:
            alpha = rho[i] * (S[i] @ q)
            q = q - alpha * Y[i]
            alphas.append(alpha)
        r = gamma * q
        for i, alpha in zip(reversed(order), reversed(alphas), strict=True):
            r = r + (alpha - rho[i] * (Y[i] @ r)) * S[i]
        return -r

    return apply


@pytest.mark.parametrize("stored", [1, 4, 7, 13])
def test_the_direction_is_the_two_loop_recursion(stored, direction_form):
    """The ring of m = 5 pairs after ``stored`` iterations (wrapped from 6 on), two members,
    a pair of each member skipped (ρ = 0): the state's −H g is the recursion's, in either
    form."""
    P, m = 6, 5
    generator = torch.Generator().manual_seed(stored)
    x = torch.zeros(2, P, dtype=torch.float64)
    state = _State.start(x, torch.ones_like(x), m, compact=direction_form == "compact")
    A = torch.randn(2, P, P, generator=generator, dtype=torch.float64)
    A = A @ A.mT + torch.eye(P, dtype=torch.float64)
    for t in range(stored):
        s = torch.randn(2, P, generator=generator, dtype=torch.float64)
        moved = torch.tensor([t != 2, t != 3])
        state._remember(s, (A @ s.unsqueeze(2)).squeeze(2), moved)
    g = torch.randn(2, P, generator=generator, dtype=torch.float64)
    order = [(stored - 1 - i) % m for i in range(min(stored, m))]
    direction = state.direction(g)
    for n in range(2):
        expected = _two_loop(state.S[n], state.Y[n], state.rho[n], state.gamma[n], order)(g[n])
        torch.testing.assert_close(direction[n], expected, rtol=1e-12, atol=1e-14)
