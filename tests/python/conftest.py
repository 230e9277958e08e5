import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))


@pytest.fixture
def rng(request):
    """A fresh generator per test; the seed is printed so a failure can be replayed
    with VP_TEST_SEED."""
    seed = int(os.environ.get("VP_TEST_SEED", np.random.SeedSequence().entropy % (2**63)))
    print(f"VP_TEST_SEED={seed}")
    return np.random.default_rng(seed)


@pytest.fixture
def cli():
    path = os.environ.get("VP_CLI", os.path.join(ROOT, "build", "bin", "voxpipe"))
    if not os.path.exists(path):
        pytest.skip("voxpipe CLI not built")
    return path
