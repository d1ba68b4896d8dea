"""Shared pytest configuration: hypothesis profiles and the float64 default."""

import os

import pytest
from hypothesis import HealthCheck, settings

# "ci" is the default: enough examples to reach the edges, bounded so the suite stays fast.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# `HYPOTHESIS_PROFILE=thorough pytest` for a long hunt before a release.
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=2000)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=15)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def restore_torch_threads():
    """The compare CLI sets torch to one thread (--threads); put the count back afterwards."""
    import torch

    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def one_torch_thread():
    """Tiny matrices: one intra-op thread is several times faster on a shared 2-core CI box."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_runtest_setup(item):
    """A test marked ``gpu`` needs CUDA: without it (``pytest -m gpu`` on a CPU box) it skips."""
    if item.get_closest_marker("gpu") is None:
        return
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
