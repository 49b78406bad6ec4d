"""AdapterState: the adapter's own tables, the narrow state its services may touch.

The drop-in contract (docs/contract.md) exposes ``orders``, ``positions`` and ``lock`` on the
adapter; they live here, shared by the facade and its services. The services never see the
facade: they get this object and the :class:`~src.brokers.ib_client.IBKRClient`.

Writers: ``orders`` — the order service (loop thread), under ``lock``; ``positions`` — the
account service (loop thread), under ``lock``. Readers on any thread take ``lock`` and copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class AdapterState:
    """Orders and positions tracked by one adapter, and the ``RLock`` guarding them."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
