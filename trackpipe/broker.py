"""The embedded Kafka-protocol broker (noida-db from PyPI, dev/test only) and topic set-up."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import time
from importlib.resources import files
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.protocol.group import LeaveGroupRequest

from .config import TOPICS, Settings
from .procs import child_preexec

log = logging.getLogger("trackpipe.broker")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


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
        wanted = [
            NewTopic(
                settings.topic(name),
                settings.partitions,
                settings.replication,
                topic_configs={"cleanup.policy": policy},
            )
            for name, policy in TOPICS.items()
            if settings.topic(name) not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s", ", ".join(t.name for t in wanted))
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
