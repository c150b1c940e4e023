"""Test configuration shared by the test suite and the doctests."""

import os
from pathlib import Path

_SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"

# The data files live beside the checkout (never downloaded); point the
# loaders there unless the user chose another folder.
if "SKSPREAD_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["SKSPREAD_DATA"] = str(_SHARED_DATA)
