"""A desk over NATS with TLS, client certificates and an NKey login (settings.cluster.tls,
settings.cluster.nkey), against a real nats-server that demands all three: certificates made
here with openssl, a user seed made with nkeys."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cluster import Cluster, NatsServer, seqs
from tests.waiting import wait_for
from tradeops.topology.model import Cluster as ClusterSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all PEM files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca, self.ca_key = folder / "ca.pem", folder / "ca.key"
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                      "-subj", "/CN=tradeops test CA", "-keyout", self.ca_key, "-out", self.ca)
        self.server, self.server_key = self._issue("server", "subjectAltName=IP:127.0.0.1")
        self.client, self.client_key = self._issue("client", "extendedKeyUsage=clientAuth")

    def _issue(self, name: str, extension: str) -> tuple[Path, Path]:
        key, csr, cert = (self.folder / f"{name}{s}" for s in (".key", ".csr", ".pem"))
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                      "-keyout", key, "-out", csr)
        ext = self.folder / f"{name}.ext"
        ext.write_text(extension + "\n")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                      "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
        return cert, key

    @staticmethod
    def _openssl(*args: object) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True,
                       timeout=60)


def user_seed(folder: Path, name: str) -> tuple[Path, str]:
    """A new NKey user seed in a file, and its public key."""
    nkeys = pytest.importorskip("nkeys")
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    path = folder / f"{name}.nk"
    path.write_bytes(seed + b"\n")
    path.chmod(0o600)
    return path, nkeys.from_seed(bytearray(seed)).public_key.decode()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[NatsServer, Pki, Path, Path]]:
    """A nats-server that speaks only TLS, verifies client certificates and knows one NKey
    user; with the desk's seed and a stranger's."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificates can be made here")
    pki = Pki(tmp_path)
    seed, public = user_seed(tmp_path, "desk")
    stranger, _ = user_seed(tmp_path, "stranger")
    server = NatsServer(tmp_path / "nats.log", config=f"""
tls {{
  cert_file: "{pki.server}"
  key_file: "{pki.server_key}"
  ca_file: "{pki.ca}"
  verify: true
  timeout: 5
}}
authorization {{
  users = [ {{ nkey: {public} }} ]
}}
""")
    server.start()
    try:
        yield server, pki, seed, stranger
    finally:
        server.stop()


def settings(port: int, pki: Pki, seed: Path, *, cert: bool = True) -> ClusterSettings:
    tls = {"ca": str(pki.ca)}
    if cert:
        tls.update(cert=str(pki.client), key=str(pki.client_key))
    return ClusterSettings.model_validate({
        "nats": f"tls://127.0.0.1:{port}", "nodes": {"a": {}}, "nkey": str(seed), "tls": tls})


def round_trip(cluster: ClusterSettings) -> bytes:
    """Publish and receive one message through the server with these settings."""
    from tradeops.cluster.link import connect

    async def main() -> bytes:
        nc = await connect(cluster, "probe")
        try:
            sub = await nc.subscribe("probe.echo")
            await nc.publish("probe.echo", b"hello")
            msg = await sub.next_msg(timeout=5)
            return bytes(msg.data)
        finally:
            await nc.close()

    return asyncio.run(main())


def test_the_link_logs_in_with_tls_a_client_certificate_and_an_nkey_and_says_what_is_wrong(
    secured: tuple[NatsServer, Pki, Path, Path],
) -> None:
    server, pki, seed, stranger = secured
    assert round_trip(settings(server.port, pki, seed)) == b"hello"
    # Without a client certificate the server ends the TLS handshake: said at once, not
    # retried forever as an unreachable server would be.
    with pytest.raises(ConnectionError, match=r"refused this desk: SSLError.*certificate required"):
        round_trip(settings(server.port, pki, seed, cert=False))
    # A seed the server does not know is refused, with the same advice.
    with pytest.raises(ConnectionError, match=r"refused this desk: .*Authorization.*login"):
        round_trip(settings(server.port, pki, stranger))
    # A file that is not there is named before anything is tried, and no secret is shown.
    missing = settings(server.port, pki, seed).model_copy(update={"nkey": "/nonexistent/x.nk"})
    with pytest.raises(ConnectionError, match=r"settings.cluster.nkey names /nonexistent/x.nk"):
        round_trip(missing)
    seed_text = seed.read_text().strip()
    assert seed_text not in (server.log.read_text())


def test_a_desk_spans_two_nodes_over_tls_with_client_certificates_and_an_nkey(
    secured: tuple[NatsServer, Pki, Path, Path], tmp_path: Path
) -> None:
    server, pki, seed, _ = secured
    out = tmp_path / "rec.seq"
    duo = Cluster(tmp_path, server.port, out, cluster=(
        f"    nkey: {seed}\n"
        f"    tls: {{ca: {pki.ca}, cert: {pki.client}, key: {pki.client_key}}}\n"))
    duo.desk.edit(f"nats: nats://127.0.0.1:{server.port}", f"nats: tls://127.0.0.1:{server.port}")
    try:
        result = duo.desk.cli("validate", str(duo.desk.file))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "cluster-file-missing" not in result.stdout
        duo.up("a")
        duo.up("b")
        wait_for(lambda: len(seqs(out)) >= 100, 60, "100 ticks on node b over TLS")
        seen = seqs(out)
        assert seen == sorted(set(seen))  # in order, none twice
        assert duo.row("b", "far")["stats"].get("lost", 0) == 0
        # Any node's status still shows the whole desk, over the secured server.
        whole = wait_for(lambda: (lambda r: r if "processes" in r["nodes"]["a"] else None)(
            duo.status_cli("b")), 30, "node a answering over TLS")
        assert "gateway-sim" in {p["name"] for p in whole["nodes"]["a"]["processes"]}
        logs = "".join(p.read_text(errors="replace")
                       for p in duo.desk.run_dir.rglob("*.log"))
        assert seed.read_text().strip() not in logs  # the seed is never logged
    finally:
        duo.cleanup()
