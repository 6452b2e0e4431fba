"""TRACKPIPE_UNREGISTERED=reject at the edge: a device the registry does not hold gets no ack and no
raw record; its frame becomes a dead letter "unregistered device" and the connection is closed once
that is durable.  A registered device on the same edge is served as ever; the id set follows the
registry's records and tombstones."""

from __future__ import annotations

import asyncio

from trackpipe.edge.registry import RegisteredIds
from trackpipe.edge.server import UNREGISTERED, Edge, TcpConnection
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from trackpipe import schemas
from trackpipe.config import Settings

from .test_limits import _Publisher, _settle, _Transport

KNOWN, STRANGER = "359000000000101", "359000000000102"


def _ids(*known: str) -> RegisteredIds:
    ids = RegisteredIds("127.0.0.1:1", "tracker.devices")  # never started: fed by hand
    for device_id in known:
        ids.apply(device_id.encode(), b"record")
    return ids


def test_registry_records_and_tombstones() -> None:
    ids = _ids(KNOWN, STRANGER)
    ids.apply(STRANGER.encode(), None)  # `devices remove`
    ids.apply(None, b"x")  # a keyless record: ignored
    assert KNOWN in ids and STRANGER not in ids and len(ids) == 1


def test_unregistered_device_is_refused_registered_one_served() -> None:
    async def scenario(device_id: str) -> tuple[Edge, _Transport, _Publisher]:
        publisher = _Publisher()
        edge = Edge(Settings(), publisher, registered=_ids(KNOWN))  # type: ignore[arg-type]
        conn = TcpConnection(edge)
        transport = _Transport()
        conn.connection_made(transport)
        device = Gt06Device(device_id, "tcp")
        conn.data_received(device.login()[0] + device.heartbeat())
        await _settle()
        return edge, transport, publisher

    edge, transport, publisher = asyncio.run(scenario(STRANGER))
    assert publisher.topics("raw") == 0 and publisher.topics("deadletter") == 1
    letter = schemas.decode("deadletter", publisher.records[0][1])
    assert (letter["reason"], letter["device_id"]) == (UNREGISTERED, STRANGER)
    assert "not registered" in letter["detail"]
    assert not transport.written and transport.closed  # no ack, then closed
    assert f"unregistered device {STRANGER}" in edge.stats.closed

    edge, transport, publisher = asyncio.run(scenario(KNOWN))
    assert publisher.topics("raw") == 2 and publisher.topics("deadletter") == 0
    assert transport.written and not transport.closed  # login and heartbeat acknowledged


def test_store_policy_takes_everyone() -> None:
    edge = Edge(Settings(), _Publisher())  # type: ignore[arg-type]
    assert not edge.rejects(STRANGER) and not edge.rejects(None)
    strict = Edge(Settings(), _Publisher(), registered=_ids(KNOWN))  # type: ignore[arg-type]
    assert strict.rejects(STRANGER) and not strict.rejects(KNOWN)
    assert not strict.rejects(None)  # no id yet (before a login): judged once the id is known
