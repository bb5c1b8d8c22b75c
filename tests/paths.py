"""Where test data lives: the recordings shipped in data/audio, and the shared data set beside the repo.

CI lays the shared folder next to the clone (`../shared`), as it is in a developer's checkout.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPO_AUDIO = REPO / "data" / "audio"
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_AUDIO = SHARED_DATA / "audio"
ACI_BENCH = SHARED_DATA / "aci-bench"
