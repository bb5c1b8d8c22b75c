"""Logging set-up. Transcript text and phone numbers never go to INFO: code logs them at DEBUG only,
and the default level here is INFO, so a production log holds call ids, timings and outcomes only."""

from __future__ import annotations

import logging
import os


def configure_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("IASOVOICE_DEBUG") == "1" else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("websockets", "botocore", "urllib3", "faster_whisper", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
