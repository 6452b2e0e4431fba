"""`trackpipe query` on an embedded store (chDB opened by the CLI itself, no pipeline running):
read-only by default, enforced by the store as well, clean empty results and errors.
Each step runs in its own process: chDB allows one directory per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 120


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store")
    made = run(
        "-c",
        "import sys; from pathlib import Path; from trackpipe import store; from trackpipe.config import Settings;"
        "store.connect(Settings(data_dir=Path(sys.argv[1])), ensure=True)",
        str(path),
    )
    assert made.returncode == 0, made.stderr
    return path


def query(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("-m", "trackpipe.cli", "query", *args, "--data-dir", str(data_dir))


def test_empty_result_prints_the_header_only(data_dir: Path) -> None:
    out = query(data_dir, "-- none yet\nSELECT device_id, fix_time FROM positions WHERE speed > 1000;")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["device_id", "fix_time"] and lines[-1] == "(0 rows)"
    assert len(lines) == 3
    as_json = query(data_dir, "SELECT device_id FROM positions", "--json")
    assert (as_json.returncode, as_json.stdout, as_json.stderr) == (0, "", "")


def test_latest_positions_has_name_and_account(data_dir: Path) -> None:
    out = query(data_dir, "DESCRIBE TABLE latest_positions", "--json")
    assert out.returncode == 0, out.stderr
    for column in ("device_id", "fix_time", "latitude", "longitude", "protocol", "device_name", "account"):
        assert f'"name":"{column}"' in out.stdout


def test_write_is_refused_without_write(data_dir: Path) -> None:
    out = query(data_dir, "insert into positions (device_id) values ('x')")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("trackpipe: error: INSERT changes the store") and "--write" in out.stderr
    count = query(data_dir, "SELECT count() AS n FROM positions", "--json")
    assert count.stdout.strip() == '{"n":0}'


def test_the_store_refuses_a_write_even_past_the_classifier(data_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from trackpipe.cli import CliError, run_query;"
        "from trackpipe.config import Settings\n"
        "try:\n"
        "    sql = 'CREATE TABLE t (a Int8) ENGINE = Memory'\n"
        "    run_query(Settings(data_dir=Path(sys.argv[1])), sql, read_only=True)\n"
        "except CliError as exc:\n"
        "    print(exc)\n"
    )
    out = run("-c", script, str(data_dir))
    assert out.returncode == 0, out.stderr
    assert "readonly mode" in out.stdout and "(READONLY)" in out.stdout


def test_sql_error_shows_statement_and_server_message(data_dir: Path) -> None:
    out = query(data_dir, "SELEC device_id FROM positions")
    assert out.returncode == 2 and "does not start a read-only statement" in out.stderr
    bad = query(data_dir, "SELECT nope FROM positions")
    assert bad.returncode == 2
    first, second = bad.stderr.splitlines()[:2]
    assert first.startswith("trackpipe: error: query failed: ") and "nope" in first
    assert "FORMAT Native" not in bad.stderr and "readonly = " not in bad.stderr
    assert second == "  statement: SELECT nope FROM positions"


def test_write_with_write_runs(data_dir: Path) -> None:
    out = query(data_dir, "OPTIMIZE TABLE deadletter", "--write")
    assert out.returncode == 0, out.stderr
