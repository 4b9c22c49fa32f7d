"""The project's own local PostgreSQL 15 cluster, used when no database URL is configured.

Layout: the invoking user's state directory (``.kataster/`` by default) holds ``cluster.json``
(port, data directory) and ``pgpass`` (mode 600, the generated password). The data directory
lives where the server's operating-system user can reach it: inside the state directory for a
normal user, and under ``/var/lib/kataster/`` when invoked as root, because PostgreSQL refuses
to run as root and the unprivileged ``postgres`` user cannot enter a mode-700 home directory.

The server listens on 127.0.0.1 only, has no Unix socket, and accepts only scram-sha-256
password authentication. URLs carry ``passfile=`` instead of the password, so no secret is
ever printed.

Roles (least privilege; see SECURITY.md):

* ``kataster_su``: the cluster's superuser. Used only by ``kataster db up`` (database,
  extensions, roles, and the schema migrations' one privileged moment); never in normal work.
* ``kataster``: owns the database; imports, validation, repairs. Neither superuser nor
  CREATEROLE nor CREATEDB.
* ``kataster_lesen``: the command line's reading commands (export, findings list, runs,
  versions, db status, eigentum through the audited function); read-only, member of
  kataster_eigentum. (``changes`` reads the parcels' versions and runs as the owner.)
* ``kataster_dienst``: MapServer and pygeoapi; read-only on the public views (kataster_leser).

Clusters made before the roles were separated have one superuser ``kataster`` for everything;
they keep working, and ``kataster db up`` says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pipeline.errors import DatabaseError
from pipeline.processes import free_port
from schemas import queries

log = logging.getLogger(__name__)
QUERIES = queries("database")

PG_MAJOR = "15"
SUPERUSER = "kataster_su"
OWNER = "kataster"
READER = "kataster_lesen"
SERVICE = "kataster_dienst"
# What each kind of work connects as.
ROLES = {"admin": SUPERUSER, "owner": OWNER, "reader": READER, "service": SERVICE}
LEGACY_SUPERUSER = "kataster"
DATABASE = "kataster"
ROOT_CLUSTERS = Path("/var/lib/kataster/clusters")

# Let the server notice a killed client even while it runs a long statement, so that a
# kill -9 of an import releases its lock and transaction within seconds.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "client_connection_check_interval": "'2s'",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "shared_buffers": "'512MB'",
    "maintenance_work_mem": "'512MB'",
    "work_mem": "'64MB'",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
    "synchronous_commit": "off",
    # No replication from a local cluster: a table emptied and loaded in one transaction is
    # written without WAL (first loads), and index builds too.
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "100",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


def pg_bindir():
    """Directory of PostgreSQL 15's server programs (Debian layout first)."""
    debian = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
    if (debian / "initdb").exists():
        return debian
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise DatabaseError(
        f"PostgreSQL {PG_MAJOR} server programs not found "
        f"(run 'make setup' to install postgresql-{PG_MAJOR} and postgresql-{PG_MAJOR}-postgis-3)"
    )


def _port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class EmbeddedCluster:
    """A project-local PostgreSQL cluster.

    Parameters
    ----------
    state_dir : Path
        Directory owned by the invoking user; created if missing.
    port : int, optional
        Fixed port. Default: a free port chosen at creation and remembered.
    """

    state_dir: Path
    port: int | None = None

    def __post_init__(self):
        self.state_dir = Path(self.state_dir).resolve()

    # -- where things are ------------------------------------------------------------------
    @property
    def state_file(self):
        return self.state_dir / "cluster.json"

    @property
    def passfile(self):
        return self.state_dir / "pgpass"

    @property
    def as_root(self):
        return os.geteuid() == 0

    @property
    def server_user(self):
        """Operating-system user that runs the server (never root)."""
        return "postgres" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    def _default_cluster_dir(self):
        if self.as_root:
            slug = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
            return ROOT_CLUSTERS / slug
        return self.state_dir / "cluster"

    def _state(self):
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return None

    @property
    def cluster_dir(self):
        state = self._state()
        return Path(state["cluster_dir"]) if state else self._default_cluster_dir()

    @property
    def data_dir(self):
        return self.cluster_dir / "data"

    @property
    def logfile(self):
        return self.cluster_dir / "server.log"

    def exists(self):
        return self._state() is not None and (self.data_dir / "PG_VERSION").exists()

    # -- running programs as the server user ------------------------------------------------
    def _run(self, args, check=True, timeout=120):
        kwargs = {}
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        if self.as_root:
            pw = pwd.getpwnam(self.server_user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env["HOME"] = pw.pw_dir
        else:
            env["HOME"] = os.environ.get("HOME", "/")
        proc = subprocess.run(
            [str(pg_bindir() / args[0]), *args[1:]],
            cwd="/", env=env, capture_output=True, text=True, timeout=timeout, **kwargs,
        )
        if check and proc.returncode != 0:
            raise DatabaseError(
                f"{args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}"
                f" (server log: {self.logfile})"
            )
        return proc

    def _chown_to_server(self, path):
        if self.as_root:
            pw = pwd.getpwnam(self.server_user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # -- lifecycle ---------------------------------------------------------------------------
    def init(self):
        """Create the cluster once: data directory, password, settings. Idempotent."""
        if self.exists():
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        cluster_dir = self._default_cluster_dir()
        if self.as_root:
            ROOT_CLUSTERS.mkdir(parents=True, exist_ok=True)
            os.chmod(ROOT_CLUSTERS.parent, 0o755)
            os.chmod(ROOT_CLUSTERS, 0o755)
        if (cluster_dir / "data" / "PG_VERSION").exists():
            # Never wipe a real cluster because the state file went missing.
            raise DatabaseError(
                f"a database cluster already exists in {cluster_dir}, but its settings "
                f"({self.state_file}) are missing; restore them, or stop that server and "
                f"remove {cluster_dir} to start afresh")
        if cluster_dir.exists():
            shutil.rmtree(cluster_dir)  # a half-made cluster from an interrupted init
        cluster_dir.mkdir(parents=True, mode=0o700)
        self._chown_to_server(cluster_dir)
        port = self.port or free_port()
        passwords = {role: secrets.token_urlsafe(24) for role in ROLES.values()}
        password = passwords[SUPERUSER]

        pwfile = cluster_dir / "initdb.pw"
        pwfile.touch(mode=0o600)
        self._chown_to_server(pwfile)
        pwfile.write_text(password + "\n")
        try:
            self._run([
                "initdb", "-D", str(cluster_dir / "data"), "--username", SUPERUSER,
                f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                "--encoding=UTF8", "--locale=C.UTF-8",
            ], timeout=300)
        finally:
            pwfile.unlink(missing_ok=True)
        settings = dict(SERVER_SETTINGS, port=str(port))
        conf = "\n".join(f"{k} = {v}" for k, v in settings.items())
        with open(cluster_dir / "data" / "postgresql.conf", "a") as fh:
            fh.write("\n# kataster embedded cluster\n" + conf + "\n")
        (cluster_dir / "data" / "pg_hba.conf").write_text(
            "# kataster: TCP on loopback only, passwords only, never trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        self.passfile.touch(mode=0o600)
        os.chmod(self.passfile, 0o600)
        self.passfile.write_text("".join(f"127.0.0.1:{port}:*:{role}:{pw}\n"
                                         for role, pw in passwords.items()))
        self.state_file.write_text(json.dumps(
            {"port": port, "cluster_dir": str(cluster_dir), "server_user": self.server_user,
             "roles": ROLES}, indent=2,
        ))
        return True

    def read_port(self):
        state = self._state()
        if state is None:
            raise DatabaseError(f"no embedded cluster in {self.state_dir} (run 'kataster db up')")
        return int(state["port"])

    def is_running(self):
        if not self.exists():
            return False
        return self._run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False).returncode == 0

    def start(self):
        """Start the server if it is not running. Returns False if it already ran."""
        if self.is_running():
            return False
        port = self.read_port()
        if _port_open(port):
            raise DatabaseError(
                f"port {port} of the embedded cluster is taken by another program "
                f"(free it, or delete {self.state_file} to choose a new port)"
            )
        self._run(["pg_ctl", "-D", str(self.data_dir), "-l", str(self.logfile), "-w", "-t", "60",
                   "start"], timeout=90)
        return True

    def stop(self):
        """Stop the server cleanly (fast shutdown). Returns False if it was not running."""
        if not self.is_running():
            return False
        self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
                  timeout=90)
        return True

    def destroy(self):
        """Stop the server and delete the cluster and its state (used by the test harness)."""
        if self.exists():
            self.stop()
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        self.passfile.unlink(missing_ok=True)

    @property
    def legacy(self):
        """True for a cluster made before the roles were separated (one superuser)."""
        state = self._state()
        return state is not None and "roles" not in state

    def role(self, kind="owner"):
        """The role name for a kind of work: admin, owner, reader or service."""
        return LEGACY_SUPERUSER if self.legacy else ROLES[kind]

    def url(self, database=DATABASE, kind="owner"):
        """libpq URI of a role without the password; ``passfile=`` points at the mode-600
        file. ``kind``: admin (the superuser, for ``db up`` only), owner, reader, service."""
        return (f"postgresql://{self.role(kind)}@127.0.0.1:{self.read_port()}/{database}"
                f"?passfile={quote(str(self.passfile))}")

    def ensure_roles(self):
        """Create the login roles (idempotent): the owner, the reading role, the services' role.
        Group membership in kataster_leser/kataster_eigentum follows once the database has
        its group roles (pipeline.db.set_up)."""
        import psycopg
        from psycopg import sql

        if self.legacy:
            return
        passwords = {}
        for line in self.passfile.read_text().splitlines():
            _host, _port, _db, user, pw = line.split(":", 4)
            passwords[user] = pw
        with psycopg.connect(self.url("postgres", "admin"), autocommit=True) as conn:
            for role in (OWNER, READER, SERVICE):
                exists = conn.execute(QUERIES["role_exists"], {"role": role}).fetchone()
                conn.execute(sql.SQL(QUERIES["alter_login" if exists else "create_login"]).format(
                    role=sql.Identifier(role), password=sql.Literal(passwords[role])))
            for role in (READER, SERVICE):
                conn.execute(sql.SQL(QUERIES["read_only_role"]).format(
                    role=sql.Identifier(role)))

    def ensure_database(self, name=DATABASE):
        """Create a database owned by the owner role if it does not exist."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres", "admin"), autocommit=True) as conn:
            found = conn.execute(QUERIES["database_exists"], {"name": name}).fetchone()
            if not found:
                conn.execute(sql.SQL(QUERIES["create_database"]).format(
                    name=sql.Identifier(name), owner=sql.Identifier(self.role("owner"))))
                return True
        return False

    def up(self):
        """Create (once), start and wait for the cluster and its roles.
        Returns (created, started)."""
        created = self.init()
        started = self.start()
        self.wait_ready()
        self.ensure_roles()
        return created, started

    def wait_ready(self, timeout=30):
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres", "admin"), connect_timeout=3):
                    return
            except psycopg.OperationalError as err:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"embedded cluster does not answer: {err}") from err
                time.sleep(0.2)
