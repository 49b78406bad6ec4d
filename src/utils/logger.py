"""The seeds' ``log_*`` helpers, over stdlib :mod:`logging`.

Every message goes through the ``ibkr`` logger (or a child of it), so an application configures
handlers and levels the standard way and ``pytest``'s ``caplog`` sees every record.
"""

from __future__ import annotations

import logging
import re

LOGGER_NAME = "ibkr"
_logger = logging.getLogger(LOGGER_NAME)

# IB account ids: "DU1234567" (paper), "U1234567" (live), "DF…"/"F…" (advisors).
_ACCOUNT_RE = re.compile(r"\b(D?[UF])(\d{2,})(\d{3})\b")


def mask_account(text: str) -> str:
    """Mask IB account ids in ``text``: ``DU1234567`` → ``DU****567``."""
    return _ACCOUNT_RE.sub(lambda m: f"{m.group(1)}{'*' * len(m.group(2))}{m.group(3)}", text)


def get_logger(name: str | None = None) -> logging.Logger:
    """The project logger, or a child of it (``get_logger("sim")`` → ``ibkr.sim``)."""
    return _logger.getChild(name) if name else _logger


def log_debug(message: str) -> None:
    _logger.debug(mask_account(message), stacklevel=2)


def log_info(message: str) -> None:
    _logger.info(mask_account(message), stacklevel=2)


def log_warning(message: str) -> None:
    _logger.warning(mask_account(message), stacklevel=2)


def log_error(message: str) -> None:
    _logger.error(mask_account(message), stacklevel=2)


def setup_logging(level: int | str = logging.INFO) -> None:
    """Console logging for the demo and the CLI (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
    else:
        root.setLevel(level)
