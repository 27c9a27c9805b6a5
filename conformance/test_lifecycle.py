"""Server lifecycle on a separate, private instance: graceful SIGTERM with a
longpoll in flight, and data, tokens and CA surviving a restart."""

import json
import threading
import time

import pytest
import requests

from cubby_server import Server, cubby_bin, free_port


def _session(ca):
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    return s


def _rpc(s, srv, token, route, arg):
    return s.post(
        "https://127.0.0.1:{}/2/{}".format(srv.https_port, route),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        data=json.dumps(arg),
        timeout=30,
    )


@pytest.fixture
def private_server(tmp_path, server):  # `server` only to run after the main one is up
    data = tmp_path / "data"
    data.mkdir()
    srv = Server(
        cubby_bin(), str(data), str(tmp_path / "server.log"), free_port(), free_port(), embedded=True
    )
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait()


def test_sigterm_with_longpoll_in_flight_and_restart(private_server):
    srv = private_server
    user = srv.add_user("carol")
    token = user["access_token"]
    s = _session(srv.ca_path)
    with open(srv.ca_path, "rb") as f:
        ca_before = f.read()

    up = s.post(
        "https://127.0.0.1:{}/2/files/upload".format(srv.https_port),
        headers={
            "Authorization": "Bearer " + token,
            "Content-Type": "application/octet-stream",
            "Dropbox-API-Arg": json.dumps({"path": "/persist/keep.txt"}),
        },
        data=b"durable",
        timeout=30,
    )
    assert up.status_code == 200, (up.status_code, up.text)
    rev = up.json()["rev"]
    r = _rpc(s, srv, token, "files/list_folder/get_latest_cursor", {"path": "/persist"})
    assert r.status_code == 200, (r.status_code, r.text)
    cursor = r.json()["cursor"]

    out = {}

    def poll():
        try:
            out["resp"] = _session(srv.ca_path).post(
                "https://127.0.0.1:{}/2/files/list_folder/longpoll".format(srv.https_port),
                headers={"Content-Type": "application/json"},
                data=json.dumps({"cursor": cursor, "timeout": 60}),
                timeout=90,
            )
        except Exception as e:  # noqa: BLE001
            out["error"] = e

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    time.sleep(0.5)
    assert th.is_alive(), "longpoll returned with no change: {!r}".format(out)

    t0 = time.monotonic()
    rc = srv.stop()
    assert rc is not None, "no exit within 10 s of SIGTERM with a longpoll open:\n" + srv.log_text()
    assert rc == 0, "exit code {} after SIGTERM:\n{}".format(rc, srv.log_text())
    assert time.monotonic() - t0 < 10
    th.join(5)
    assert not th.is_alive(), "longpoll connection still open after the server exited"

    # restart on the same data directory
    srv.proc = None
    srv.start()
    with open(srv.ca_path, "rb") as f:
        assert f.read() == ca_before, "CA certificate changed across restart"
    s2 = _session(srv.ca_path)
    r = _rpc(s2, srv, token, "files/get_metadata", {"path": "/persist/keep.txt"})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["rev"] == rev
    # the old cursor is still valid: no changes since
    r = _rpc(s2, srv, token, "files/list_folder/continue", {"cursor": cursor})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["entries"] == []
    rc = srv.stop()
    assert rc == 0, "exit code {} after second SIGTERM:\n{}".format(rc, srv.log_text())
