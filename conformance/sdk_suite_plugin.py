"""A pytest plugin (loaded with -p by test_sdk_suite.py) that points the Dropbox SDK's own
integration suite (test/integration/test_dropbox.py of the dropbox 12.2.4 sdist, left as
it ships) at Cubby's CA instead of the CA bundles it trusts for Dropbox's servers.

That suite runs each test twice: "no-pinning" (create_session(ca_certs=None), i.e. the
system's trust store via requests) and "pinning" (create_session(ca_certs=<its
trusted-certs.crt>), Dropbox's pinned bundle). Neither can trust Cubby's own CA, so both are
mapped to it here, in the SDK's create_session, at import, before the suite imports it.
Every other bundle passes through untouched: test_bad_pins's expired-certs.crt must still
fail the TLS handshake, and does.

Environment (set by test_sdk_suite.py):
  CUBBY_CA_CERTS      Cubby's CA certificate (PEM)
  CUBBY_PINNED_CERTS  the suite's trusted-certs.crt, to be replaced by CUBBY_CA_CERTS
"""

import os

import dropbox
import dropbox.dropbox_client

CUBBY_CA = os.environ["CUBBY_CA_CERTS"]
PINNED = os.path.realpath(os.environ["CUBBY_PINNED_CERTS"])

# The installed SDK of our venv (the very version of the sdist), not the sdist's source tree.
assert dropbox.__version__ == "12.2.4", dropbox.__version__
assert "site-packages" in dropbox.__file__, dropbox.__file__

_create_session = dropbox.dropbox_client.create_session


def create_session(max_connections=8, proxies=None, ca_certs=None):
    if ca_certs is None or os.path.realpath(ca_certs) == PINNED:
        ca_certs = CUBBY_CA
    return _create_session(max_connections=max_connections, proxies=proxies, ca_certs=ca_certs)


create_session.__doc__ = _create_session.__doc__
# `Dropbox(...)` calls the name in dropbox_client; the suite imports `dropbox.create_session`.
dropbox.dropbox_client.create_session = create_session
dropbox.create_session = create_session
