"""A throwaway MIT Kerberos realm on 127.0.0.1 for tests: krb5.conf, kdc.conf, database, principals, keytabs, KDC.

`start_realm(workdir)` builds everything under `workdir` and runs `krb5kdc -n` on a free port; `Realm.stop()` ends it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from osipi_dagster_tests.emulator import free_port, stop_process

REALM = "OSIPI.TEST"
# The emulator is reached as http://localhost:PORT, so the client asks for HTTP/localhost (SPN = HTTP/<host>).
SERVICE_HOST = "localhost"
USER = "pi-reader"
PASSWORD = "Kerb3ros-pw"  # a throwaway realm's password; nothing outside the temp dir ever sees it
MASTER_PASSWORD = "master-key-of-a-throwaway-realm"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "kdestroy")


def _tool(name: str) -> str:
    # Debian puts the KDC tools in /usr/sbin, which is not on a non-root PATH.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if found is None:
        raise FileNotFoundError(name)
    return found


def missing_tools() -> list[str]:
    """The MIT Kerberos programs this fixture needs but cannot find (Debian: krb5-kdc krb5-admin-server krb5-user)."""
    missing = []
    for name in TOOLS:
        try:
            _tool(name)
        except FileNotFoundError:
            missing.append(name)
    return missing


@dataclass
class Realm:
    """A running KDC and the files a client or acceptor needs (`env()` holds the variables to export)."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes]
    krb5_conf: Path
    kdc_conf: Path
    service_keytab: Path
    user_keytab: Path
    ccache: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def user_principal(self) -> str:
        return f"{USER}@{REALM}"

    @property
    def service_principal(self) -> str:
        return f"HTTP/{SERVICE_HOST}@{REALM}"

    def env(self) -> dict[str, str]:
        """KRB5_* variables pointing every Kerberos library and tool at this realm only."""
        return {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.kdc_conf),
            "KRB5CCNAME": f"FILE:{self.ccache}",
            # The acceptor's replay cache; the default (/var/tmp) may be shared or unwritable.
            "KRB5RCACHEDIR": str(self.workdir),
        }

    def kinit(self, *, ccache: Path | None = None, keytab: bool = False) -> None:
        """Get a TGT for the user, by password on stdin or from the user's keytab."""
        env = {**os.environ, **self.env(), "KRB5CCNAME": f"FILE:{ccache or self.ccache}"}
        if keytab:
            args = [_tool("kinit"), "-k", "-t", str(self.user_keytab), self.user_principal]
            stdin = b""
        else:
            args = [_tool("kinit"), self.user_principal]
            stdin = (PASSWORD + "\n").encode()
        _run(args, env=env, stdin=stdin)

    def kdestroy(self, *, ccache: Path | None = None) -> None:
        env = {**os.environ, **self.env(), "KRB5CCNAME": f"FILE:{ccache or self.ccache}"}
        _run([_tool("kdestroy"), "-q"], env=env)

    def log(self) -> str:
        path = self.workdir / "kdc.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            stop_process(self.process)

    def __enter__(self) -> Realm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(args: list[str], *, env: dict[str, str], stdin: bytes = b"") -> None:
    done = subprocess.run(args, input=stdin, env=env, capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}"
        )


def _write_configs(workdir: Path, port: int) -> tuple[Path, Path]:
    krb5_conf = workdir / "krb5.conf"
    kdc_conf = workdir / "kdc.conf"
    krb5_conf.write_text(
        f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_realm = false
    dns_lookup_kdc = false
    # Keep "localhost" as typed: no forward/reverse DNS canonicalisation of the service host.
    dns_canonicalize_hostname = false
    rdns = false
    # TCP only: one free port is checked for TCP, and UDP on loopback would need its own check.
    udp_preference_limit = 1
    ticket_lifetime = 1h
    forwardable = true

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    {SERVICE_HOST} = {REALM}
"""
    )
    kdc_conf.write_text(
        f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {REALM} = {{
        database_name = {workdir}/principal
        key_stash_file = {workdir}/stash
        acl_file = {workdir}/kadm5.acl
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 1h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{workdir}/kdc.log
"""
    )
    (workdir / "kadm5.acl").write_text("")
    return krb5_conf, kdc_conf


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_realm(workdir: Path, *, timeout: float = 20.0) -> Realm:
    """Create the realm database, principals and keytabs under `workdir`, then run the KDC until it accepts TCP."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    krb5_conf, kdc_conf = _write_configs(workdir, port)
    env = {
        **os.environ,
        "KRB5_CONFIG": str(krb5_conf),
        "KRB5_KDC_PROFILE": str(kdc_conf),
    }
    _run([_tool("kdb5_util"), "-r", REALM, "create", "-s", "-W", "-P", MASTER_PASSWORD], env=env)
    service_keytab = workdir / "http.keytab"
    user_keytab = workdir / "user.keytab"
    for query in (
        f"addprinc -randkey HTTP/{SERVICE_HOST}@{REALM}",
        f"addprinc -pw {PASSWORD} {USER}@{REALM}",
        f"ktadd -k {service_keytab} HTTP/{SERVICE_HOST}@{REALM}",
        # -norandkey keeps the password valid while the keytab holds the same keys.
        f"ktadd -norandkey -k {user_keytab} {USER}@{REALM}",
    ):
        _run([_tool("kadmin.local"), "-r", REALM, "-q", query], env=env)
    with open(workdir / "krb5kdc.out", "wb") as out:
        # The child keeps its own copy of the descriptor; a file (not a pipe) can never fill up and block the KDC.
        process = subprocess.Popen([_tool("krb5kdc"), "-n", "-r", REALM], env=env, stdout=out, stderr=out)
    realm = Realm(
        workdir=workdir,
        port=port,
        process=process,
        krb5_conf=krb5_conf,
        kdc_conf=kdc_conf,
        service_keytab=service_keytab,
        user_keytab=user_keytab,
        ccache=workdir / "ccache",
    )
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if process.poll() is not None:
            err = (workdir / "krb5kdc.out").read_text(errors="replace")
            raise RuntimeError(
                f"krb5kdc exited with {process.returncode}: {err.strip()} {realm.log()[-1000:]}"
            )
        if time.monotonic() > deadline:
            realm.stop()
            raise TimeoutError(f"krb5kdc not listening on 127.0.0.1:{port} within {timeout} s: {realm.log()}")
        time.sleep(0.05)  # polling interval of a bounded readiness wait, not synchronisation
    return realm
