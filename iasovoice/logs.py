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


def configure_worker_logging() -> None:
    """Ray's `worker_process_setup_hook`: call actors and IO actors log as the server does, at INFO.

    A Ray worker sets up no root logger, so its INFO lines were dropped and its warnings reached the
    session's worker-*.err files unformatted. Ray's own `LoggingConfig` would also hook the driver,
    which is the gateway, and print each of its lines twice.
    """
    configure_logging()
