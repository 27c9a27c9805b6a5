"""users/*, check/user, authentication and transport conventions."""

import json
import re

import pytest
from dropbox import users
from dropbox.exceptions import AuthError, BadInputError

from cubby_helpers import SUMMARY_DOTS, rand


def test_get_current_account(dbx, alice):
    acct = dbx.users_get_current_account()
    assert isinstance(acct, users.FullAccount)
    assert acct.account_id == alice["account_id"]
    assert len(acct.account_id) == 40
    assert acct.name.display_name
    assert acct.locale and len(acct.locale) >= 2
    assert acct.account_type.is_basic() or acct.account_type.is_pro() or acct.account_type.is_business()
    ri = acct.root_info
    assert ri.root_namespace_id and ri.home_namespace_id
    assert re.match(r"^[0-9]+$", ri.root_namespace_id), ri.root_namespace_id


def test_two_users_have_distinct_accounts(dbx, dbx2, alice, bob):
    a = dbx.users_get_current_account()
    b = dbx2.users_get_current_account()
    assert a.account_id == alice["account_id"]
    assert b.account_id == bob["account_id"]
    assert a.account_id != b.account_id
    assert a.root_info.home_namespace_id != b.root_info.home_namespace_id


def test_get_space_usage_counts_uploads(dbx, base):
    before = dbx.users_get_space_usage()
    assert isinstance(before, users.SpaceUsage)
    assert before.used >= 0
    alloc = before.allocation
    assert alloc.is_individual() or alloc.is_team(), alloc
    data = rand(100 * 1024)
    dbx.files_upload(data, base + "/space.bin")
    after = dbx.users_get_space_usage()
    assert after.used >= before.used + len(data), (before.used, after.used)


@pytest.mark.parametrize("query", ["", "hello", "Téxt ✓ 日本語"])
def test_check_user_echoes(dbx, query):
    assert dbx.check_user(query).result == query


def test_bad_token_is_auth_error(new_client):
    bad = new_client("not-a-valid-token-" + rand(8).hex())
    with pytest.raises(AuthError) as ei:
        bad.users_get_current_account()
    assert ei.value.error.is_invalid_access_token(), ei.value.error
    with pytest.raises(AuthError) as ei:
        bad.files_list_folder("")
    assert ei.value.error.is_invalid_access_token(), ei.value.error


def test_bad_token_raw_401_shape(http, base_url):
    r = http.post(
        base_url + "/2/users/get_current_account",
        headers={"Authorization": "Bearer nope-nope", "Content-Type": "application/json"},
        data="null",
    )
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == "application/json"
    body = r.json()
    assert body["error"] == {".tag": "invalid_access_token"}, body
    assert re.match(r"^invalid_access_token/" + SUMMARY_DOTS, body["error_summary"]), body


def test_missing_authorization_is_400(http, base_url):
    r = http.post(
        base_url + "/2/users/get_current_account",
        headers={"Content-Type": "application/json"},
        data="null",
    )
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.text.strip()


def test_pattern_violation_is_bad_input(dbx):
    # "relative" does not match ReadPath; bypass the SDK's own validator.
    with pytest.raises(BadInputError) as ei:
        dbx.request_json_string_with_retry(
            "api", "files/get_metadata", "rpc", json.dumps({"path": "relative"}), "user", None
        )
    assert ei.value.message


def test_pattern_violation_raw_400_plain_text(http, base_url, auth_headers):
    r = http.post(
        base_url + "/2/files/get_metadata",
        headers=dict(auth_headers, **{"Content-Type": "application/json"}),
        data=json.dumps({"path": "relative"}),
    )
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    assert r.text.strip()


@pytest.mark.parametrize(
    "body",
    [b"null", b"", b"{}"],
    ids=["null", "empty", "empty-object"],
)
def test_void_argument_forms(http, base_url, auth_headers, alice, body):
    headers = dict(auth_headers)
    if body:
        headers["Content-Type"] = "application/json"
    r = http.post(base_url + "/2/users/get_current_account", headers=headers, data=body)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers.get("Content-Type") == "application/json"
    assert r.json()["account_id"] == alice["account_id"]


def test_bad_json_body_is_400(http, base_url, auth_headers):
    r = http.post(
        base_url + "/2/check/user",
        headers=dict(auth_headers, **{"Content-Type": "application/json"}),
        data=b"{not json",
    )
    assert r.status_code == 400, (r.status_code, r.text)


def test_unknown_argument_fields_are_ignored(http, base_url, auth_headers):
    r = http.post(
        base_url + "/2/check/user",
        headers=dict(auth_headers, **{"Content-Type": "application/json"}),
        data=json.dumps({"query": "x", "some_future_field": True}),
    )
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json() == {"result": "x"}


def test_authorization_query_parameter(http, base_url, alice):
    r = http.post(
        base_url + "/2/users/get_current_account",
        params={"authorization": "Bearer " + alice["access_token"]},
        headers={"Content-Type": "application/json"},
        data="null",
    )
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["account_id"] == alice["account_id"]


def test_certificate_valid_for_ip_and_localhost(server, alice, ca_certs):
    import requests

    for host in ("localhost", "127.0.0.1"):
        s = requests.Session()
        s.trust_env = False
        s.verify = ca_certs
        r = s.post(
            "https://{}:{}/2/check/user".format(host, server.https_port),
            headers={
                "Authorization": "Bearer " + alice["access_token"],
                "Content-Type": "application/json",
            },
            data=json.dumps({"query": host}),
        )
        assert r.status_code == 200, (host, r.status_code, r.text)
        assert r.json() == {"result": host}



@pytest.mark.parametrize(
    "host",
    ["api.dropboxapi.com", "content.dropboxapi.com", "notify.dropboxapi.com", "example.invalid"],
)
def test_routes_served_on_every_host_name(http, base_url, auth_headers, host):
    r = http.post(
        base_url + "/2/check/user",
        headers=dict(auth_headers, **{"Content-Type": "application/json", "Host": host}),
        data=json.dumps({"query": host}),
    )
    assert r.status_code == 200, (host, r.status_code, r.text)
    assert r.json() == {"result": host}
