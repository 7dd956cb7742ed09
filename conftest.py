"""Shared pytest set-up: a non-interactive plotting backend and the quick profile for tests."""

import os

import matplotlib

matplotlib.use("Agg")  # in this process only: notebook kernels keep their inline backend
os.environ.setdefault("MINISSL_PROFILE", "quick")
