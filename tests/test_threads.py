"""The BLAS thread limit the CLI applies."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from simulator.errors import EdgesimError
from simulator.threads import blas_threads, limited_blas


def test_default_is_one_thread_and_the_variable_raises_it():
    assert blas_threads({}) == 1
    assert blas_threads({"EDGESIM_BLAS_THREADS": "4"}) == 4
    for bad in ("0", "-1", "two", "1e3", "99999"):
        with pytest.raises(EdgesimError, match="EDGESIM_BLAS_THREADS"):
            blas_threads({"EDGESIM_BLAS_THREADS": bad})


def test_limit_applies_inside_the_block():
    np.ones((2, 2)) @ np.ones((2, 2))  # BLAS loaded
    with limited_blas(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
