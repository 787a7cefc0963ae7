"""A throwaway PostgreSQL cluster for the results-index tests: Debian's `postgresql` package
(installed by .ci/install-postgres), initdb into a fresh folder, pg_ctl start on a free loopback
port with fsync off, password (SCRAM) authentication over TCP; stopped at session end.

initdb refuses to run as root: as root, the cluster belongs to the package's `postgres` user,
in a folder outside pytest's (root-only) tmp tree, and is run through runuser."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from litellm_proxy import free_port

SUPERUSER = "runner_admin"
START_ATTEMPTS = 3
START_TIMEOUT_S = 60


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, or None."""
    found = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")
             if Path(d, "initdb").is_file() and Path(d, "pg_ctl").is_file()]
    return max(found, key=lambda d: int(d.parent.name), default=None) if found else None


def missing() -> str | None:
    """Why no cluster can be started here, or None."""
    if postgres_bin() is None:
        return "no PostgreSQL under /usr/lib/postgresql/*/bin: run .ci/install-postgres"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to own the cluster"
        if not shutil.which("runuser"):
            return "running as root without runuser to start the cluster as `postgres`"
    return None


@dataclass
class PostgresServer:
    """A running throwaway cluster; `url` makes a URL for one of its databases."""

    bin: Path
    home: Path  # data/, the socket, the log; owned by the cluster's user
    port: int
    password: str

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A postgresql:// URL for `database` as the superuser (with `password` if given)."""
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL (the password in it)."""
        import psycopg  # the dev extra's; imported here so that conftest needs it only now

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def halt(self) -> None:
        """Stop the server at once, keeping its data (`start` brings it back)."""
        _run([str(self.bin / "pg_ctl"), "-D", str(self.home / "data"), "-m", "immediate",
              "-w", "-t", "30", "stop"], check=False)

    def start(self) -> bool:
        """Start the server on its port; False when it would not (the port was taken)."""
        options = (f"-F -p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
                   " -c max_connections=50")
        done = _run([str(self.bin / "pg_ctl"), "-D", str(self.home / "data"), "-l",
                     str(self.home / "log"), "-w", "-t", str(START_TIMEOUT_S), "-o", options,
                     "start"], check=False)
        return done.returncode == 0

    def stop(self) -> None:
        """Stop the cluster (its data is thrown away) and remove its folder."""
        self.halt()
        shutil.rmtree(self.home, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb and start a cluster; RuntimeError with its log if it will not start."""
    binary = postgres_bin()
    assert binary is not None, missing()
    home = Path(tempfile.mkdtemp(prefix="runner-pg-"))
    password = secrets.token_urlsafe(12)
    (home / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for path in (home, home / "pw"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    _run([str(binary / "initdb"), "-D", str(home / "data"), "-U", SUPERUSER, "-E", "UTF8",
          "--no-locale", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
          f"--pwfile={home / 'pw'}"])
    for _ in range(START_ATTEMPTS):  # another process may take the free port meanwhile
        server = PostgresServer(binary, home, free_port(), password)
        if server.start():
            return server
    log = (home / "log").read_text(errors="replace")[-2000:]
    shutil.rmtree(home, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start in {START_ATTEMPTS} attempts:\n{log}")


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program, as `postgres` when this process is root."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd="/",
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr or done.stdout}")
    return done
