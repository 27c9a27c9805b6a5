"""Drives Maestral (the open-source Dropbox sync client, maestral==1.9.6) against a Cubby
server, for test_maestral.py.

Maestral lives in its own virtualenv, `<repo>/.venv-maestral`: it needs dropbox==12.2.0 and the
conformance venv has a later SDK. `ensure_venv()` creates it and installs
conformance/requirements-maestral.txt, again only when that file (or the Python) changes.

Everything Maestral writes stays under one temporary folder: HOME and the XDG folders point
there, its token goes to the plaintext keyring of keyrings.alt (no keyring daemon), and it
reaches Cubby by host name only (DROPBOX_*_HOST) with Cubby's CA as REQUESTS_CA_BUNDLE.
"""

import configparser
import fcntl
import hashlib
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO_ROOT, ".venv-maestral")
REQUIREMENTS = os.path.join(REPO_ROOT, "conformance", "requirements-maestral.txt")

# Compiled into maestral (maestral/constants.py, DROPBOX_APP_KEY): the app key its OAuth flow
# (PKCE, no secret) and its refresh-token client use.
MAESTRAL_APP_KEY = "2jmbq42w7vof78h"

HOST_VARS = (
    "DROPBOX_API_HOST",
    "DROPBOX_API_CONTENT_HOST",
    "DROPBOX_API_NOTIFY_HOST",
    "DROPBOX_WEB_HOST",
)

# Maestral's own entries inside the local Dropbox folder (temporary downloads, ignore rules).
LOCAL_IGNORED = {".maestral.cache", ".mignore"}

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]")


def strip_ansi(text):
    return _ANSI_RE.sub("", text)


def ensure_venv():
    """Creates/updates .venv-maestral; returns the path of its `maestral` program."""
    with open(REQUIREMENTS, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    # A new Python (a venv is tied to its interpreter) also means a fresh install.
    want += " python-{}.{}".format(*sys.version_info[:2])
    python = os.path.join(VENV, "bin", "python")
    stamp = os.path.join(VENV, ".maestral-requirements.sha256")
    try:
        with open(stamp) as f:
            have = f.read().strip()
    except OSError:
        have = None
    if have != want or not os.access(python, os.X_OK):
        # From scratch: nothing of an older set of pins stays behind.
        _run_checked([sys.executable, "-m", "venv", "--clear", VENV])
        _run_checked(
            [
                python,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
                REQUIREMENTS,
            ]
        )
        with open(stamp, "w") as f:
            f.write(want + "\n")
    exe = os.path.join(VENV, "bin", "maestral")
    if not os.access(exe, os.X_OK):
        raise RuntimeError("no maestral program in {}".format(VENV))
    return exe


def _run_checked(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(
            "{} failed ({}):\n{}\n{}".format(" ".join(cmd), r.returncode, r.stdout, r.stderr)
        )


class Maestral(object):
    """One Maestral configuration (`-c NAME`) with its own home, folder and daemon."""

    def __init__(self, exe, root, ca_path, name="cubby"):
        self.exe = exe
        self.python = os.path.join(os.path.dirname(exe), "python")
        self.name = name
        self.root = str(root)
        self.home = os.path.join(self.root, "home")
        self.folder = os.path.join(self.root, "Dropbox")
        self.runtime = os.path.join(self.root, "run")
        self.daemon_log = os.path.join(self.root, "daemon.log")
        for d in (self.home, self.folder):
            os.makedirs(d, exist_ok=True)
        os.makedirs(self.runtime, mode=0o700, exist_ok=True)
        env = {
            "PATH": os.path.dirname(exe) + ":/usr/local/bin:/usr/bin:/bin",
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_DATA_HOME": os.path.join(self.home, ".local", "share"),
            "XDG_STATE_HOME": os.path.join(self.home, ".local", "state"),
            "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
            "XDG_RUNTIME_DIR": self.runtime,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # Wide enough that rich's tables neither wrap nor cut paths, URLs and revs.
            "COLUMNS": "400",
            "TERM": "dumb",
            "PYTHONUNBUFFERED": "1",
            # The SDK's default session trusts this bundle instead of its own (requests reads
            # it for every request, also the uploads Maestral sends itself).
            "REQUESTS_CA_BUNDLE": ca_path,
            "NO_PROXY": "localhost,127.0.0.1",
            "no_proxy": "localhost,127.0.0.1",
        }
        for var in HOST_VARS:
            env[var] = os.environ[var]
        self.env = env
        self.proc = None
        self._daemon_log_f = None

    # -- files of the configuration --------------------------------------------------------

    @property
    def config_file(self):
        return os.path.join(self.env["XDG_CONFIG_HOME"], "maestral", self.name + ".ini")

    @property
    def state_file(self):
        return os.path.join(self.env["XDG_DATA_HOME"], "maestral", self.name + ".state")

    @property
    def log_file(self):
        return os.path.join(self.env["XDG_CACHE_HOME"], "maestral", self.name + ".log")

    @property
    def keyring_file(self):
        # keyrings.alt.file.PlaintextKeyring
        return os.path.join(self.env["XDG_DATA_HOME"], "python_keyring", "keyring_pass.cfg")

    def keyring_token(self, account_id):
        """The refresh token in the plaintext keyring for account_id, or None."""
        code = (
            "import sys\n"
            "from keyrings.alt.file import PlaintextKeyring\n"
            "accessor = 'config:%s:%s' % tuple(sys.argv[1:])\n"
            "t = PlaintextKeyring().get_password('Maestral', accessor)\n"
            "print(t or '')\n"
        )
        r = subprocess.run(
            [self.python, "-c", code, self.name, account_id],
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert r.returncode == 0, (r.stdout, r.stderr)
        return r.stdout.strip() or None

    def state(self, section, key):
        p = configparser.ConfigParser(interpolation=None)
        p.read(self.state_file)
        return p.get(section, key, fallback=None)

    def configure(self, **values):
        """Writes config values (section, key) -> value before the first `auth link`, through
        maestral's own config class (the CLI's `config set` wants an existing config, which
        only `auth link` makes)."""
        code = (
            "import json, sys\n"
            "from maestral.config import MaestralConfig\n"
            "conf = MaestralConfig(sys.argv[1])\n"
            "for section, key, value in json.loads(sys.argv[2]):\n"
            "    conf.set(section, key, value)\n"
        )
        items = [k.split(".", 1) + [v] for k, v in values.items()]
        r = subprocess.run(
            [self.python, "-c", code, self.name, json.dumps(items)],
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert r.returncode == 0, (r.stdout, r.stderr)

    # -- the CLI ---------------------------------------------------------------------------

    def run(self, *args, check=True, timeout=60, config=True):
        """Runs `maestral ARGS -c NAME`; returns the CompletedProcess (text)."""
        cmd = [self.exe] + list(args)
        if config:
            cmd += ["-c", self.name]
        r = subprocess.run(
            cmd,
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            cwd=self.home,
        )
        if check and r.returncode != 0:
            raise AssertionError(
                "{} exited with {}:\nstdout:\n{}\nstderr:\n{}\n{}".format(
                    " ".join(args), r.returncode, r.stdout, r.stderr, self.logs()
                )
            )
        return r

    def out(self, *args, **kwargs):
        """stdout of `maestral ARGS`, without colour codes."""
        return strip_ansi(self.run(*args, **kwargs).stdout)

    def out_when_idle(self, *args, timeout=60):
        """stdout of a command Maestral runs only while idle (`excluded remove`): Maestral
        may start a sync at any moment (a longpoll answering late), and then asks to "try
        again when idle", as a person would; so it is tried again until it runs."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.run(*args, check=False)
            if r.returncode == 0 or "when idle" not in r.stdout or time.monotonic() > deadline:
                break
            time.sleep(1)
        if r.returncode != 0:
            # Once more, failing with the command's output and the daemon's log.
            r = self.run(*args)
        return strip_ansi(r.stdout)

    def link(self, answer_consent, timeout=90):
        """`maestral auth link` in a pseudo-terminal, as a person would: picks "Print auth URL
        to console", hands the URL it prints to answer_consent(url) -> code (the consent page),
        and types the code. Returns (authorize URL, transcript)."""
        pid, fd = pty.fork()
        if pid == 0:  # child
            try:
                env = dict(self.env, TERM="xterm-256color")
                env.pop("COLUMNS", None)
                os.chdir(self.home)
                os.execve(self.exe, [self.exe, "auth", "link", "-c", self.name], env)
            finally:
                os._exit(127)
        # A wide terminal: the URL must come out on one line.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 2000, 0, 0))
        raw = bytearray()
        url = None
        sent_enter = sent_code = False
        arrow_at = None
        last_output = time.monotonic()
        deadline = time.monotonic() + timeout
        exit_status = None
        try:
            while True:
                now = time.monotonic()
                if now > deadline:
                    raise AssertionError(
                        "maestral auth link did not finish within {} s; terminal:\n{}".format(
                            timeout, strip_ansi(raw.decode("utf-8", "replace"))
                        )
                    )
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        data = os.read(fd, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        data = b""
                    if not data:
                        break
                    raw += data
                    last_output = now
                    # The prompt library asks for the cursor position (DSR); answer as a
                    # terminal would, else it waits forever.
                    for _ in range(data.count(b"\x1b[6n")):
                        os.write(fd, b"\x1b[10;1R")
                    if sent_code and re.search(
                        r"Invalid token|Could not connect",
                        strip_ansi(data.decode("utf-8", "replace")),
                    ):
                        raise AssertionError(
                            "maestral auth link refused the code; terminal:\n{}\n{}".format(
                                strip_ansi(raw.decode("utf-8", "replace")), self.logs()
                            )
                        )
                    continue
                # Type only while the prompt waits for a key: it has drawn itself (cursor
                # shown again) and said nothing for a moment. Keys sent while it draws are
                # echoed by the terminal and then flushed.
                if not (raw.endswith(b"\x1b[?25h") and now - last_output > 0.3):
                    continue
                text = strip_ansi(raw.decode("utf-8", "replace"))
                if not sent_enter and "Print auth URL to console" in text:
                    if text.rfind("> Print auth URL") > text.rfind("> Open Dropbox website"):
                        os.write(fd, b"\r")
                        sent_enter = True
                    elif arrow_at is None or now - arrow_at > 2:
                        os.write(fd, b"\x1b[B")  # arrow down
                        arrow_at = now
                elif sent_enter and url is None:
                    m = re.search(r"(https://\S+/oauth2/authorize\?\S+)", text)
                    if m and "Enter the auth code" in text[m.end() :]:
                        url = m.group(1)
                        code = answer_consent(url)
                        os.write(fd, code.encode() + b"\r")
                        sent_code = True
        finally:
            # The terminal closed (or we gave up): collect the child, killing it after 10 s.
            until = time.monotonic() + 10
            while exit_status is None:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exit_status = status
                elif time.monotonic() > until:
                    os.kill(pid, signal.SIGKILL)
                    _, exit_status = os.waitpid(pid, 0)
                else:
                    time.sleep(0.05)
            os.close(fd)
        text = strip_ansi(raw.decode("utf-8", "replace"))
        assert (
            exit_status is not None and os.waitstatus_to_exitcode(exit_status) == 0
        ), "maestral auth link failed ({}); terminal:\n{}\n{}".format(
            exit_status, text, self.logs()
        )
        assert url is not None, text
        return url, text

    # -- the daemon ------------------------------------------------------------------------

    def start(self):
        """`maestral start --foreground` as our own child (so we hold its pid)."""
        assert self.proc is None or self.proc.poll() is not None
        self._daemon_log_f = open(self.daemon_log, "ab")
        self.proc = subprocess.Popen(
            [self.exe, "start", "--foreground", "--verbose", "-c", self.name],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._daemon_log_f,
            stderr=subprocess.STDOUT,
            cwd=self.home,
        )

    def wait_exit(self, timeout=30):
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def shutdown(self):
        """Stops the daemon if it still runs: `maestral stop`, then SIGTERM, then SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.run("stop", check=False, timeout=40)
            except subprocess.TimeoutExpired:
                pass
            if self.wait_exit(10) is None:
                self.proc.terminate()
                if self.wait_exit(10) is None:
                    self.proc.kill()
                    self.proc.wait()
        if self._daemon_log_f is not None:
            self._daemon_log_f.close()
            self._daemon_log_f = None

    def status(self):
        """(status line, number of sync errors, whole output) of `maestral status`."""
        r = self.run("status", check=False, timeout=30)
        text = strip_ansi(r.stdout + r.stderr)
        m = re.search(r"^\s*Status\s+(.+?)\s*$", text, re.M)
        e = re.search(r"^\s*Sync errors\s+(\d+)", text, re.M)
        return (m.group(1) if m else None), (int(e.group(1)) if e else None), text

    def logs(self, limit=12000):
        parts = []
        for label, path in (("daemon output", self.daemon_log), ("maestral log", self.log_file)):
            try:
                with open(path, "r", errors="replace") as f:
                    parts.append("--- {} ({}):\n{}".format(label, path, f.read()[-limit:]))
            except OSError:
                pass
        return "\n".join(parts)

    # -- the local tree --------------------------------------------------------------------

    def local_path(self, dbx_path):
        return os.path.join(self.folder, dbx_path.lstrip("/"))
