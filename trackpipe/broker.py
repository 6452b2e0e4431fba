"""The embedded Kafka-protocol broker (noida-db from PyPI, dev/test only) and topic set-up."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import threading
import time
from importlib.resources import files
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.protocol.group import LeaveGroupRequest

from .config import TABLES, TOPICS, Settings
from .procs import child_preexec

log = logging.getLogger("trackpipe.broker")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float) -> bool:
    """Whether `host:port` accepts a connection within `timeout` seconds (tried at least once)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def noida_binary() -> Path:
    path = Path(str(files("noida_db").joinpath("noida-db")))
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def spawn_embedded(data_dir: Path, port: int, log_file: Path | None = None) -> subprocess.Popen:
    """Start noida-db (Kafka only) on 127.0.0.1:`port` without waiting for it to listen."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [
            str(noida_binary()),
            "start",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=child_preexec,
    )
    if log_file:
        out.close()  # type: ignore[union-attr]
    return proc


def start_embedded(
    data_dir: Path, port: int | None = None, log_file: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """Start noida-db (Kafka only) on loopback; returns the process and its bootstrap address."""
    port = port or free_port()
    proc = spawn_embedded(data_dir, port, log_file)
    if not wait_port("127.0.0.1", port, 30):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"embedded broker did not listen on 127.0.0.1:{port} (see {log_file})")
    return proc, f"127.0.0.1:{port}"


async def ensure_topics(settings: Settings, bootstrap: str, timeout: float = 30.0) -> None:
    """Create every topic with the configured partitions (existing ones are left alone)."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            await admin.start()
            break
        except Exception as exc:
            await admin.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka {bootstrap} not reachable: {exc}") from exc
            await asyncio.sleep(0.3)
    try:
        existing = set(await admin.list_topics())
        policies = {settings.topic(name): policy for name, policy in TOPICS.items()}
        policies.update({settings.changelog(table): "compact" for table in TABLES})  # before Faust makes them
        wanted = [
            NewTopic(name, settings.partitions, settings.replication, topic_configs=settings.topic_configs(policy))
            for name, policy in policies.items()
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s", ", ".join(t.name for t in wanted))
        if settings.compact_segment_bytes > 0:  # compacted topics made before: their segments too
            older = [
                ConfigResource(ConfigResourceType.TOPIC, name, configs=settings.topic_configs(policy))
                for name, policy in policies.items()
                if name in existing and policy == "compact"
            ]
            if older:
                await admin.alter_configs(older)
    finally:
        await admin.close()


async def evict_group_members(bootstrap: str, group: str, timeout: float = 5.0) -> list[str]:
    """Remove every member of consumer group `group` (LeaveGroup on their behalf); returns their ids.

    For the embedded broker only, after the supervisor's one worker died without leaving
    (kill -9): noida-db keeps a vanished member as the group's leader, so the restarted
    worker's join would wait for a rebalance that never completes.  With no live member
    left, evicting them all is safe."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    evicted: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            for response in await admin.describe_consumer_groups([group]):
                for entry in response.groups:  # (error, group, state, ..., [members], ...)
                    members = next((f for f in entry if isinstance(f, list)), [])
                    evicted.extend(member[0] for member in members)  # member_id comes first
            for member_id in evicted:
                await admin._send_request(LeaveGroupRequest(group, member_id))
    finally:
        await admin.close()
    return evicted


#: delete-policy topics the worker's group consumes: trimmed only behind its committed offset
CONSUMED = ("raw", "deadletter")


def trim_targets(
    begins: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
    consumed: set[str],
    keep: int,
    keep_stored: int | None = None,
) -> dict[TopicPartition, int]:
    """Per partition, the offset to delete records before: the newest `keep` records stay; in a
    topic the worker consumes, nothing at or after its committed offset goes (nothing it has not
    stored yet) and `keep_stored` (default `keep`) of the stored records before it stay.
    Partitions with nothing to delete are left out."""
    targets: dict[TopicPartition, int] = {}
    for tp, end in ends.items():
        if tp.topic in consumed:
            target = min(committed.get(tp, 0), end) - (keep if keep_stored is None else keep_stored)
        else:
            target = end - keep
        if target > begins.get(tp, 0):
            targets[tp] = target
    return targets


async def trim_once(settings: Settings, bootstrap: str) -> int:
    """Delete what the embedded broker need not keep (`trim_targets`); returns records deleted."""
    names = [name for name, policy in TOPICS.items() if policy == "delete"]
    tps = [TopicPartition(settings.topic(n), p) for n in names for p in range(settings.partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await admin.start()
        await consumer.start()
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        committed = {
            tp: meta.offset
            for tp, meta in (await admin.list_consumer_group_offsets(settings.app_id)).items()
            if meta.offset >= 0
        }
        consumed = {settings.topic(n) for n in CONSUMED}
        targets = trim_targets(begins, ends, committed, consumed, settings.broker_keep, settings.broker_keep_stored)
        if targets:
            await admin.delete_records({tp: RecordsToDelete(before_offset=o) for tp, o in targets.items()})
        return sum(o - begins.get(tp, 0) for tp, o in targets.items())
    finally:
        await consumer.stop()
        await admin.close()


class Trimmer:
    """Keeps the embedded broker's memory flat (it holds every record in RAM and rewrites it all
    to disk every second): every `broker_trim_interval` seconds, in a thread of its own,
    `trim_once`.  A failed round (broker restarting) is logged and tried again next time."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.trimmed = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broker-trimmer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.broker_trim_interval):
            try:
                deleted = asyncio.run(asyncio.wait_for(trim_once(self.settings, self.bootstrap), 30))
            except Exception as exc:
                log.warning("broker trim failed (%r); next try in %.0fs", exc, self.settings.broker_trim_interval)
                continue
            self.rounds += 1
            self.trimmed += deleted
            if deleted:
                log.info("trimmed %d records from the embedded broker (%d in all)", deleted, self.trimmed)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(35)
