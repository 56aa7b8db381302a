"""A private PostgreSQL server for tests and benchmarks, from Debian's ``postgresql`` binaries.

The server lives in a temporary directory (data, log and unix socket), listens on 127.0.0.1 on a
free port, trusts every local connection and is stopped at the end, whatever happened. initdb and
postgres refuse to run as root, so under root (CI) the cluster is owned by, and run as, the
``postgres`` system user the Debian package creates (through ``runuser``).

fsync is off: the tests kill workers, never the database, and a test suite that fsyncs every
commit on a shared 2-core machine measures the disk, not the job system.

    python -m tests.support.postgres   # start one, print its URL, run until Ctrl-C
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferrymq.bench.rabbitmq_node import free_port

START_TIMEOUT_S = 60
SERVICE_USER = "postgres"  # the superuser role initdb creates, and the OS user under root
SETTINGS = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB")


def bin_dir() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    found = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")
             if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()]
    return max(found, key=lambda d: _version(d.parent.name), default=None)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def unavailable_reason() -> str | None:
    """Why no private server can start here, or None when one can."""
    if bin_dir() is None:
        return "PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root and no {SERVICE_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


@dataclass
class PostgresServer:
    base: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database on this server (dropped first if it exists); its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        """Stop the server (immediate: tests keep nothing) and delete its directory."""
        if (self.base / "data" / "postmaster.pid").exists():
            _run(self.bin, ["pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop"],
                 check=False)
        shutil.rmtree(self.base, ignore_errors=True)


def _as_service_user() -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []


def _run(bin_path: Path, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [*_as_service_user(), str(bin_path / argv[0]), *argv[1:]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S, cwd="/")
    if check and done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip()
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {output}")
    return done


def _prepare_dir() -> Path:
    base = Path(tempfile.mkdtemp(prefix="ferrymq-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    return base


def start_postgres() -> PostgresServer:
    """Initialise and start a private server; raises RuntimeError (with the log) when it cannot."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    bin_path = bin_dir()
    assert bin_path is not None
    base = _prepare_dir()
    server = PostgresServer(base, free_port(), bin_path)
    try:
        _run(bin_path, ["initdb", "-D", str(base / "data"), "-U", SERVICE_USER, "-A", "trust",
                        "-E", "UTF8", "--no-sync", "--no-instructions"])
        _start_on_a_free_port(server)
    except BaseException:
        server.stop()
        raise
    return server


def _start_on_a_free_port(server: PostgresServer) -> None:
    """Start; a port taken between choosing and binding it is retried on another one."""
    for attempt in range(3):
        try:
            _start(server)
            return
        except RuntimeError:
            if attempt == 2:
                raise
            server.port = free_port()


def _start(server: PostgresServer) -> None:
    data, log = server.base / "data", server.base / "postgres.log"
    options = f"-p {server.port} -k {server.base} {SETTINGS}"
    done = _run(server.bin, ["pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w",
                             "-t", str(START_TIMEOUT_S), "start"], check=False)
    if done.returncode != 0:
        text = log.read_text(errors="replace")[-2000:] if log.exists() else done.stderr
        raise RuntimeError(f"PostgreSQL did not start on port {server.port}: {text}")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A private server for the duration of the block, always stopped after it."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    with running_postgres() as server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()


# --- pytest fixtures: import them into a test module ---------------------------------------------
#     from tests.support.postgres import any_db_url, postgres_server  # (noqa F401)

@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private server for the whole session (a start costs a second or two)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each engine: a real SQLite file, and a new database on the
    private PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
