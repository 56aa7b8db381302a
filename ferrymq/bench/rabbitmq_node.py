"""A private, throwaway RabbitMQ node for benchmarks and tests: the one launcher (the tests'
fixtures and ``tests.support.rabbitmq`` use this module).

    node = start_rabbitmq(tmpdir)      # blocks until the port answers the AMQP handshake
    try:
        pika.BlockingConnection(pika.URLParameters(node.amqp_url))
    finally:
        node.stop()

The node runs Debian's ``rabbitmq-server`` (3.10.x) as a child process in a session of its own,
with everything that could collide with another node kept apart: its own node name, AMQP port,
distribution port, data (mnesia), logs, config, enabled-plugins file (empty: no management) and
Erlang cookie, all under ``tmpdir``. Only epmd (port 4369) is shared, as it must be.

What the Debian scripts need, learnt from ``/usr/sbin/rabbitmq-server`` and the scripts it runs:

* ``/usr/sbin/rabbitmq-server`` is a wrapper that, as root, ``su``s to the ``rabbitmq`` user and
  ``cd``s to /var/lib/rabbitmq; that user cannot write a root-owned tmpdir. So we run the real
  script, ``/usr/lib/rabbitmq/bin/rabbitmq-server``, directly, as whoever we are (root in CI
  works: RabbitMQ 3.10 does not refuse root).
* ``HOME`` must be writable: the Erlang VM reads (or creates) ``$HOME/.erlang.cookie``; we write
  one ourselves (mode 0400) so nothing lands in /root and the CLI tools could reach the node.
* ``RABBITMQ_ALLOW_INPUT`` must be unset: with it the script ``exec``s the VM with an Erlang
  shell on stdin, which dies at EOF. Without it the script runs the VM as a background child and
  traps SIGTERM to stop it, so SIGTERM to the process group is a clean shutdown.
* ``RABBITMQ_CONF_ENV_FILE`` is pointed into tmpdir so /etc/rabbitmq/rabbitmq-env.conf (which
  may set NODENAME or NODE_PORT) cannot override ours; likewise the advanced config file.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_SCRIPT = "/usr/lib/rabbitmq/bin/rabbitmq-server"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"


def server_script() -> str | None:
    """The real start script (not the /usr/sbin wrapper), or None where RabbitMQ is absent."""
    override = os.environ.get("FERRYMQ_RABBITMQ_SERVER")
    for candidate in (override, SERVER_SCRIPT):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def available() -> bool:
    return server_script() is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RabbitNode:
    port: int
    dist_port: int
    nodename: str
    base: Path
    process: subprocess.Popen[bytes]
    start_seconds: float = 0.0
    owns_dir: bool = False  # a temporary directory of our own: removed by stop()
    management_port: int = 0  # rabbitmq_management's HTTP port (0: the plugin is not enabled)
    ssl_port: int = 0  # the AMQPS listener (0: started without tls)
    tls_ca: str = ""  # the CA clients verify the node's certificate with

    @property
    def prometheus_url(self) -> str:
        """rabbitmq_prometheus (enabled with management), on the port after management's."""
        assert self.management_port, "started without management=True"
        return f"http://127.0.0.1:{self.management_port + 1}"

    @property
    def management_url(self) -> str:
        assert self.management_port, "started without management=True"
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def amqps_url(self) -> str:
        assert self.ssl_port, "started without tls"
        return f"amqps://guest:guest@localhost:{self.ssl_port}/%2F?cacertfile={self.tls_ca}"

    @property
    def log_path(self) -> Path:
        return self.base / "console.log"

    @property
    def beam_pid(self) -> int:
        """The Erlang VM's pid (a child of the start script), for CPU accounting."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            pgid = int(stat[stat.rindex(")") + 2:].split()[2])
            if pgid == self.process.pid and comm.startswith("beam"):
                return int(entry.name)
        raise LookupError("no beam process in the node's process group")

    @property
    def pid(self) -> int:
        """The Erlang VM's pid (for CPU accounting); the start script's if none is found."""
        try:
            return self.beam_pid
        except LookupError:
            return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to the whole process group (script, VM, its port programs); SIGKILL after
        STOP_TIMEOUT_S. Idempotent."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        # The script may exit before the VM's last port programs do; sweep the group.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(self.process.pid):
            _signal_group(self.process.pid, signal.SIGKILL)
        if self.owns_dir:
            shutil.rmtree(self.base, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


@dataclass(frozen=True)
class NodeTls:
    """PEM files for the node's AMQPS listener (RabbitMQ's ssl_options), and its port."""

    port: int
    cert: str
    key: str
    ca: str

    def conf(self) -> str:
        return (f"listeners.ssl.default = 127.0.0.1:{self.port}\nssl_options.certfile = {self.cert}\n"
                f"ssl_options.keyfile = {self.key}\nssl_options.cacertfile = {self.ca}\n"
                "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")


def _node_files(base: Path, port: int, management_port: int = 0, tls: NodeTls | None = None) -> Path:
    """The node's home (with an Erlang cookie), config and plugin list under ``base``: no plugins,
    or rabbitmq_management on ``management_port``."""
    home = base / "home"
    home.mkdir(exist_ok=True)
    cookie = home / ".erlang.cookie"
    if not cookie.exists():
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
    plugins = "[rabbitmq_management,rabbitmq_prometheus]" if management_port else "[]"
    (base / "enabled_plugins").write_text(f"{plugins}.\n")
    management = (f"management.tcp.port = {management_port}\nmanagement.tcp.ip = 127.0.0.1\n"
                  f"prometheus.tcp.port = {management_port + 1}\nprometheus.tcp.ip = 127.0.0.1\n"
                  if management_port else "")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\n"
        "log.console = false\n"
        "log.file.level = info\n" + management + (tls.conf() if tls else "")
    )
    (base / "rabbitmq-env.conf").write_text("")
    return home


def _node_env(base: Path, home: Path, nodename: str, port: int, dist_port: int) -> dict[str, str]:
    """The caller's environment without its RabbitMQ and Erlang settings, plus the node's own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RABBITMQ_", "ERL_", "ERLANG_"))}
    env.update(
        HOME=str(home),
        RABBITMQ_NODENAME=nodename,
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist_port),
        RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
        RABBITMQ_LOG_BASE=str(base / "log"),
        RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
        RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
        RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
        # The distribution listener on loopback only, like the AMQP one.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
    )
    return env


def _await_amqp(node: RabbitNode, t0: float, timeout: float) -> RabbitNode:
    """Poll until the node answers the AMQP handshake; stop it on failure or timeout."""
    try:
        while True:
            if node.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {node.process.returncode}:\n"
                                   + _tail(node.log_path))
            if answers_amqp(node.port) and (not node.management_port or _answers_http(node)) \
                    and (not node.ssl_port or _answers_tcp(node.ssl_port)):
                node.start_seconds = time.monotonic() - t0
                return node
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"rabbitmq-server did not answer on {node.port} within {timeout:.0f} s:\n"
                                   + _tail(node.log_path))
            time.sleep(0.2)
    except BaseException:
        node.stop()
        raise


def _free_pair() -> int:
    """A free port whose successor is free too: management on it, rabbitmq_prometheus on the next."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def _answers_tcp(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def _answers_http(node: RabbitNode) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", node.management_port), 0.5) as sock:
            sock.sendall(b"GET /api/overview HTTP/1.0\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def start_rabbitmq(tmpdir: str | os.PathLike[str] | None = None,
                   timeout: float = START_TIMEOUT_S, management: bool = False,
                   tls: tuple[str, str, str] | None = None) -> RabbitNode:
    """Start a node with everything under ``tmpdir`` (None: a temporary directory, removed by
    ``stop()``); return once it answers the AMQP handshake (and, with ``management``, HTTP on
    ``node.management_url``: rabbitmq_management enabled, guest/guest). ``tls`` (cert, key, CA
    files) adds an AMQPS listener on ``node.ssl_port``."""
    script = server_script()
    if script is None:
        raise FileNotFoundError(f"rabbitmq-server not installed ({SERVER_SCRIPT} missing)")
    owns_dir = tmpdir is None
    if tmpdir is None:
        tmpdir = tempfile.mkdtemp(prefix="ferrymq-rabbit-")
    base = Path(tmpdir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    port, dist_port = free_port(), free_port()
    while dist_port == port:
        dist_port = free_port()
    management_port = _free_pair() if management else 0
    node_tls = NodeTls(free_port(), *tls) if tls else None
    nodename = f"ferrytest-{port}@localhost"
    env = _node_env(base, _node_files(base, port, management_port, node_tls), nodename, port, dist_port)
    t0 = time.monotonic()
    with (base / "console.log").open("ab") as console:
        process = subprocess.Popen(
            [script], env=env, cwd=base, stdin=subprocess.DEVNULL, stdout=console,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    node = RabbitNode(port, dist_port, nodename, base, process, owns_dir=owns_dir,
                      management_port=management_port, ssl_port=node_tls.port if node_tls else 0,
                      tls_ca=node_tls.ca if node_tls else "")
    return _await_amqp(node, t0, timeout)


def answers_amqp(port: int, host: str = "127.0.0.1") -> bool:
    """True when the port answers the protocol header with a connection.start method frame."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(PROTOCOL_HEADER)
            head = b""
            while len(head) < 11:
                chunk = s.recv(11 - len(head))
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    ftype, channel, _size, class_id, method_id = struct.unpack(">BHIHH", head)
    return (ftype, channel, class_id, method_id) == (1, 0, 10, 10)


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no console log)"


def remove(node: RabbitNode) -> None:
    """Stop the node and delete its directory."""
    node.stop()
    shutil.rmtree(node.base, ignore_errors=True)


def main() -> None:
    """``python -m ferrymq.bench.rabbitmq_node [DIR]``: start a node, print its URL and the Erlang
    VM's pid (for ``--broker-pid``) as one JSON line, run until SIGINT/SIGTERM, then stop it."""
    import json
    import sys

    node = start_rabbitmq(sys.argv[1] if len(sys.argv) > 1 else None)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(json.dumps({"amqp_url": node.amqp_url, "port": node.port, "beam_pid": node.beam_pid,
                      "nodename": node.nodename, "dir": str(node.base),
                      "start_seconds": round(node.start_seconds, 2)}), flush=True)
    try:
        while not stop and node.alive():
            time.sleep(0.2)
    finally:
        node.stop()


if __name__ == "__main__":
    main()
