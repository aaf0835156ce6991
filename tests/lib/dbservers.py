# SPDX-License-Identifier: MIT
"""Real PostgreSQL 15 and MariaDB servers started by the tests in a temporary directory on
loopback, and stopped by pid."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _wait_held(proc, held, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if held():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise RuntimeError("the lock on isol8_sessions was never held")


def postgres_available():
    return os.path.exists(f"{PG_BIN}/initdb")


def mariadb_available():
    return shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="isol8-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.pw = pwd.getpwnam("postgres")
        os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        self.proc = None

    def _demote(self):
        os.setgid(self.pw.pw_gid)
        os.setuid(self.pw.pw_uid)

    def _as_postgres(self, args, **kw):
        return subprocess.run(args, preexec_fn=self._demote, capture_output=True, text=True, cwd=self.dir, **kw)

    def init(self):
        r = self._as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stderr)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.dir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        return self

    def start(self):
        def demote():
            os.setsid()
            os.setgid(self.pw.pw_gid)
            os.setuid(self.pw.pw_uid)
        self.proc = subprocess.Popen([f"{PG_BIN}/postgres", "-D", self.data], preexec_fn=demote,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "a"))
        if not _wait_port(self.port):
            raise RuntimeError("postgres did not start")
        # wait until it accepts queries, then make the database
        for _ in range(100):
            r = self._as_postgres(["psql", "-h", "127.0.0.1", "-p", str(self.port),
                                   "-U", "postgres", "-c", "SELECT 1"])
            if r.returncode == 0:
                break
            time.sleep(0.05)
        self._as_postgres(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", "CREATE DATABASE isol8"])
        return self

    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/isol8"

    def _psql(self, statement):
        return ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "isol8", "-v",
                "ON_ERROR_STOP=1", "-Atq", "-c", statement]

    def sql(self, statement):
        """Runs statement in the isol8 database; its output's rows."""
        r = self._as_postgres(self._psql(statement), timeout=30)
        if r.returncode != 0:
            raise RuntimeError("psql failed: " + r.stderr)
        return r.stdout.splitlines()

    def hold_sessions_lock(self, seconds):
        """A client that keeps every write to isol8_sessions waiting for seconds (reads go on);
        returns once the lock is held, with the client's process."""
        proc = subprocess.Popen(self._psql(f"BEGIN; LOCK TABLE isol8_sessions IN EXCLUSIVE MODE; "
                                           f"SELECT pg_sleep({seconds}); COMMIT;"),
                                preexec_fn=self._demote, cwd=self.dir, stdout=subprocess.DEVNULL)
        _wait_held(proc, lambda: self.sql("SELECT count(*) FROM pg_locks WHERE granted AND mode = 'ExclusiveLock'"
                                          " AND relation = 'isol8_sessions'::regclass") == ["1"])
        return proc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="isol8-my-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = _free_port()
        self.proc = None

    def init(self):
        r = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db failed: " + r.stderr[-2000:])
        return self

    def start(self):
        self.proc = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={self.data}", f"--socket={self.sock}",
                                      f"--port={self.port}", "--bind-address=127.0.0.1", "--user=root",
                                      "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin"],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "a"),
                                     preexec_fn=os.setsid)
        if not _wait_port(self.port):
            raise RuntimeError("mariadbd did not start: " + open(os.path.join(self.dir, "log")).read()[-2000:])
        for _ in range(100):
            r = subprocess.run(["mariadb", f"--socket={self.sock}", "-uroot", "-e",
                                "CREATE DATABASE IF NOT EXISTS isol8; "
                                "CREATE USER IF NOT EXISTS 'isol8'@'127.0.0.1' IDENTIFIED BY 's3cr3t-pw'; "
                                "GRANT ALL ON isol8.* TO 'isol8'@'127.0.0.1';"], capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.05)
        return self

    def url(self):
        return f"mysql://isol8:s3cr3t-pw@127.0.0.1:{self.port}/isol8"

    def _mariadb(self, statement):
        return ["mariadb", f"--socket={self.sock}", "-uroot", "-N", "-B", "isol8", "-e", statement]

    def sql(self, statement):
        """Runs statement in the isol8 database; its output's rows."""
        r = subprocess.run(self._mariadb(statement), capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("mariadb failed: " + r.stderr)
        return r.stdout.splitlines()

    def hold_sessions_lock(self, seconds):
        """A client that keeps every write to isol8_sessions waiting for seconds (reads go on);
        returns once the lock is held, with the client's process."""
        proc = subprocess.Popen(self._mariadb(f"LOCK TABLES isol8_sessions READ; SELECT SLEEP({seconds}); UNLOCK TABLES;"),
                                stdout=subprocess.DEVNULL)
        # Its SLEEP runs once the lock is held.
        _wait_held(proc, lambda: self.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                                          " WHERE INFO LIKE 'SELECT SLEEP(%'") == ["1"])
        return proc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
