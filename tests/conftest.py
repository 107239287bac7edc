"""Shared test setup.

The environment block runs at import time, before any test module (or harness
itself) imports ``transformers``/``datasets``: those libraries read these variables
once, when they are first imported. Subprocesses started by tests inherit them.
"""

from __future__ import annotations

import os

# --------------------------------------------------------------------------- environment
# Tests never touch the network: the hub libraries must fail fast instead of retrying.
_TEST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(_TEST_ENV)

# --------------------------------------------------------------------------- fixtures
# (none shared yet; add fixtures used by several test modules below)
