# Appended to a throw-away copy of kafka-python's test/integration/conftest.py by
# scripts/kafka-upstream-suites.sh. Its SSL tests start a Kafka of their own with
# KafkaFixture.instance(transport='SSL') (Java, keytool): here that call starts a `ferrymq serve`
# with a TLS Kafka listener instead, its certificates made by `ferrymq certs` (the CA is the
# fixture's ca-cert). SUITES_FERRYMQ_PY / SUITES_FERRYMQ_TOP say which Python and checkout run it
# (not FERRYMQ_*: the broker reads those as settings).
import os as _os
import shutil as _shutil
import socket as _socket
import subprocess as _subprocess
import time as _time

from test.integration import fixtures as _fixtures

_kafka_instance = _fixtures.KafkaFixture.instance


class _FerrySSLBroker:
    """What the SSL tests read of their fixture: host, port, ssl_dir (with ca-cert), start, close."""

    def __init__(self, tmp_dir):
        self.host, self.transport = "localhost", "SSL"
        self.tmp = str(tmp_dir)
        self.ssl_dir = _os.path.join(self.tmp, "ssl")
        self.port = _fixtures.get_open_port()
        self.child = None

    def _ferrymq(self, *args, **popen):
        cmd = [_os.environ["SUITES_FERRYMQ_PY"], "-m", "ferrymq.cli", *args]
        tls = {"FERRYMQ_TLS_CERT_FILE": "server.pem", "FERRYMQ_TLS_KEY_FILE": "server.key"}
        env = {**_os.environ, "PYTHONPATH": _os.environ["SUITES_FERRYMQ_TOP"],
               **{k: _os.path.join(self.ssl_dir, v) for k, v in tls.items()}}
        return _subprocess.Popen(cmd, env=env, **popen)

    def start(self):
        if self.child is not None:
            return
        self._ferrymq("certs", "--dir", self.ssl_dir, stdout=_subprocess.DEVNULL).wait(60)
        _shutil.copy(_os.path.join(self.ssl_dir, "ca.pem"), _os.path.join(self.ssl_dir, "ca-cert"))
        ports = ["--amqp-port", "0", "--http-port", "0", "--kafka-port", "0",
                 "--kafka-ssl-port", str(self.port)]
        self.child = self._ferrymq("serve", "--data-dir", _os.path.join(self.tmp, "data"), *ports,
                                   "--fsync", "never", "--log-level", "error")
        for _ in range(150):
            try:
                _socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                _time.sleep(0.2)
        raise RuntimeError("ferrymq serve with a TLS Kafka listener did not start")

    def open(self):
        self.start()

    def close(self):
        if self.child is not None:
            self.child.terminate()
            self.child.wait(30)
            self.child = None


def _instance(broker_id, *args, transport="PLAINTEXT", tmp_dir=None, **kwargs):
    if transport.upper() != "SSL":
        return _kafka_instance(broker_id, *args, transport=transport, tmp_dir=tmp_dir, **kwargs)
    broker = _FerrySSLBroker(tmp_dir)
    broker.start()
    return broker


_fixtures.KafkaFixture.instance = staticmethod(_instance)
