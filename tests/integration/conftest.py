"""conftest: per-test process registry (everything a test starts is stopped by PID at teardown)."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import lsm  # noqa: E402


@pytest.fixture
def reg(tmp_path):
    """reg: the Registry of processes and namespaces this test starts; torn down afterwards."""
    r = lsm.Registry(tmp_path)
    yield r
    r.close()


@pytest.fixture
def netns(reg):
    """netns: a fresh network namespace with only lo, deleted after the test."""
    ns = lsm.Netns()
    reg.add(ns)
    return ns
