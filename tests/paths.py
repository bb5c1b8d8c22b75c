"""Where test data lives: the real recordings and clinical dialogues shipped in data/ (see each SOURCE.md).

Every test reads from the repository itself, so a checkout stands alone and no test skips for missing data.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
REPO_AUDIO = DATA / "audio"
ACI_BENCH = DATA / "aci-bench"
MTS_DIALOG = DATA / "mts-dialog"
