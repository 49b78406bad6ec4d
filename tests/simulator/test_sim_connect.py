"""Handshake and IB.connect()'s start-up sync against the simulated gateway."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sim_support import ACCOUNT, Client

from src.simulator import SimulatedGateway

pytestmark = pytest.mark.integration

#: Requests IB.connect() sends during its start-up sync (and the gateway must answer).
SYNC_REQUESTS = {61, 5, 99, 6, 76, 7}


@pytest.mark.parametrize("use_async", [False, True], ids=["blocking-thread", "connectAsync"])
def test_connect_syncs_every_startup_request(make_client: Callable[..., Client],
                                             gateway: SimulatedGateway, use_async: bool) -> None:
    c = make_client(None)
    errors: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: errors.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger(c.mod.__name__).addHandler(handler)
    try:
        c.connect(3, use_async=use_async)
    finally:
        logging.getLogger(c.mod.__name__).removeHandler(handler)
    # a start-up request left unanswered makes ib_insync log "... request timed out" (its 4 s
    # sync timeout) instead of failing; speed lives in benchmarks/
    assert not [m for m in errors if "timed out" in m.lower()], errors
    assert c(lambda ib: ib.isConnected())
    assert c(lambda ib: ib.client.serverVersion()) == 176
    assert c(lambda ib: ib.managedAccounts()) == [ACCOUNT]
    assert c(lambda ib: ib.client._reqIdSeq) >= 1  # nextValidId arrived
    seen = {msg_id for cid, msg_id, _ in gateway.requests if cid == 3}
    assert seen >= SYNC_REQUESTS
    assert 71 in seen  # startApi


def test_client_version_range_is_what_the_library_offers(ib_module: Any) -> None:
    cls = ib_module.client.Client
    assert cls.MinClientVersion == 157 and cls.MaxClientVersion in (176, 178)


def test_req_current_time_and_req_ids(client: Client, gateway: SimulatedGateway) -> None:
    now = client(lambda ib: ib.reqCurrentTime())
    assert int(now.timestamp()) == int(gateway.clock.now().timestamp())  # the gateway's clock
    ids_before = client(lambda ib: ib.client._reqIdSeq)
    client(lambda ib: ib.client.reqIds(1))
    client(lambda ib: ib.reqCurrentTime())  # round trip: the nextValidId answer is in
    assert client(lambda ib: ib.client._reqIdSeq) >= ids_before


def test_two_clients_with_distinct_ids_coexist(make_client: Callable[..., Client],
                                               gateway: SimulatedGateway) -> None:
    a = make_client(1)
    b = make_client(2, use_async=True)
    assert a(lambda ib: ib.isConnected()) and b(lambda ib: ib.isConnected())
    assert gateway.stats()["sessions"] == 2
