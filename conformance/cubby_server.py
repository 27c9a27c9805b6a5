"""Start/stop a `cubby serve` process and run `cubby admin` commands.

Must not import dropbox: conftest imports this before setting the SDK hosts.
"""

import json
import os
import signal
import socket
import subprocess
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def cubby_bin():
    b = os.environ.get("CUBBY_BIN", "target/debug/cubby")
    if not os.path.isabs(b):
        b = os.path.join(REPO_ROOT, b)
    return b


class Server(object):
    def __init__(self, bin_path, data_dir, log_path, https_port, http_port, embedded=False):
        self.bin = bin_path
        self.data = data_dir
        self.log_path = log_path
        self.https_port = https_port
        self.http_port = http_port
        self.host = "localhost:{}".format(https_port)
        self.base_url = "https://{}".format(self.host)
        self.ca_path = os.path.join(data_dir, "tls", "ca.pem")
        self.proc = None
        self._log = None
        # embedded=True ignores the scale-out back-ends of the environment (a private server).
        self.env = dict(os.environ)
        if embedded:
            self.env.pop("CUBBY_METADATA", None)
            self.env.pop("CUBBY_BLOCKS", None)

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()[-20000:]
        except OSError:
            return ""

    def start(self):
        self._log = open(self.log_path, "ab")
        cmd = [
            self.bin,
            "serve",
            "--data",
            self.data,
            "--http",
            "127.0.0.1:{}".format(self.http_port),
            "--https",
            "127.0.0.1:{}".format(self.https_port),
            # files/save_url refuses loopback and private addresses; the suite's local
            # origin server (test_save_url.py) lives on 127.0.0.1, so allow exactly that
            # address (not ::1 or the rest of 127.0.0.0/8: the tests check those stay refused).
            "--fetch-allow",
            "127.0.0.1/32",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
        )
        deadline = time.monotonic() + 30
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(
                    "cubby serve exited with {} before listening:\n{}".format(rc, self.log_text())
                )
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(
                    "cubby serve did not listen on {} within 30 s:\n{}".format(
                        self.https_port, self.log_text()
                    )
                )
            time.sleep(0.05)
        if not os.path.isfile(self.ca_path):
            raise RuntimeError("no CA certificate at {}:\n{}".format(self.ca_path, self.log_text()))

    def admin(self, *args, stdin=None):
        """Runs `cubby admin ARGS --json`; `stdin` (text) is fed to it, e.g. a password."""
        cmd = [self.bin, "admin"] + list(args) + ["--data", self.data, "--json"]
        r = subprocess.run(
            cmd,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
        )
        if r.returncode != 0:
            raise RuntimeError(
                "{} failed ({}):\nstdout: {}\nstderr: {}".format(
                    " ".join(cmd), r.returncode, r.stdout, r.stderr
                )
            )
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise RuntimeError("{} printed no JSON object:\n{}".format(" ".join(cmd), r.stdout))

    def add_user(self, name):
        user = self.admin("user", "add", name)
        assert user.get("name") == name, user
        assert user.get("account_id"), user
        tok = self.admin("token", name)
        assert tok.get("access_token"), tok
        user["access_token"] = tok["access_token"]
        return user

    def stop(self):
        """SIGTERM; returns the exit code or None if it did not exit within 10 s."""
        if self.proc is None:
            return 0
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
        self._log.close()
        return rc
