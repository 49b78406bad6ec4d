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


class AccountMaskFilter(logging.Filter):
    """Masks IB account ids in every record of the logger it is attached to.

    The ``log_*`` helpers mask their own messages; this covers the loggers whose messages we do
    not write — ib_insync logs whole ``Trade``/``Execution``/``Position`` objects (``account=``,
    ``acctNumber=``) at INFO, which an application logging at INFO would otherwise print.
    Filters are not inherited by child loggers, so it is attached to each logger by name.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem, not ours
            return True
        masked = mask_account(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_MASK_FILTER = AccountMaskFilter()

#: Loggers of the IB client libraries (ib_insync 0.9.86 and its successor ib_async).
THIRD_PARTY_LOGGERS: tuple[str, ...] = tuple(
    f"{package}{suffix}"
    for package in ("ib_insync", "ib_async")
    for suffix in ("", ".client", ".wrapper", ".ib", ".Decoder", ".Watchdog", ".IBC",
                   ".flexreport", ".util")
)


def _mask(logger: logging.Logger) -> logging.Logger:
    if _MASK_FILTER not in logger.filters:
        logger.addFilter(_MASK_FILTER)
    return logger


def get_logger(name: str | None = None) -> logging.Logger:
    """The project logger, or a child of it (``get_logger("sim")`` → ``ibkr.sim``), with
    account ids masked in whatever it logs."""
    return _mask(_logger.getChild(name)) if name else _logger


_mask(_logger)
for _name in THIRD_PARTY_LOGGERS:
    _mask(logging.getLogger(_name))


def log_debug(message: str) -> None:
    if _logger.isEnabledFor(logging.DEBUG):  # no masking work for a record nobody wants
        _logger.debug(mask_account(message), stacklevel=2)


def log_info(message: str) -> None:
    if _logger.isEnabledFor(logging.INFO):  # no masking work for a record nobody wants
        _logger.info(mask_account(message), stacklevel=2)


def log_warning(message: str) -> None:
    if _logger.isEnabledFor(logging.WARNING):  # no masking work for a record nobody wants
        _logger.warning(mask_account(message), stacklevel=2)


def log_error(message: str) -> None:
    if _logger.isEnabledFor(logging.ERROR):  # no masking work for a record nobody wants
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
