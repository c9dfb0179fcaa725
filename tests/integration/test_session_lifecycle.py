# SPDX-License-Identifier: ISC
"""A session's life on the request path: revalidation with the refresh
token (session_revalidate), the idle timeout, and what sign-out does at
the provider (revocation of the refresh token, logout_hint).  Real
gatehouse, the tests' own provider (tests/op), a real upstream; LMDB and
Redis where the store matters."""
import time

import pytest
import requests

from op_client import OP
from signin import query, sign_in, start_gateway, to_sign_in


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}


def wait_for(what, timeout=10.0):
    """Poll what() until it returns something true; return it."""
    end = time.time() + timeout
    while True:
        v = what()
        if v or time.time() > end:
            return v
        time.sleep(0.05)


def revalidations(g):
    return g.log().count(" revalidate: ")


def test_revalidation_refused_ends_session(op, tmp, upstream, session_store):
    """The user's sessions are revoked at the provider (Entra's
    revokeSignInSessions, a disabled user, a reset password): the first
    request after session_revalidate refreshes, the provider answers
    invalid_grant, and the session ends: the browser is sent to sign in,
    an API client gets 401."""
    g = start_gateway(op, tmp, upstream, ["session_revalidate = 2s"],
                      store=session_store)
    s, _ = sign_in(g, "rita@contoso.com")
    api, _ = sign_in(g, "rita@contoso.com")
    assert s.get(g.url + "/private", timeout=5).status_code == 200
    # Not due yet: the provider is not asked.
    assert op.counter("token_refresh") == 0
    assert op.revoke("rita@contoso.com")["revoked"] == 2
    time.sleep(2.5)
    r = s.get(g.url + "/private", allow_redirects=False, headers=HTML,
              timeout=10)
    assert to_sign_in(r), (r.status_code, r.headers)
    refreshes = op.requests("token")
    assert [e["notes"].get("error") for e in refreshes
            if e["notes"].get("grant_type") == "refresh_token"] == \
        ["invalid_grant"]
    assert g.loggrep(r"refresh id=\w+ revalidate: \d+s since the last")
    assert g.loggrep(r"refresh result=ended")
    # Gone for good: the next request does not ask the provider again.
    r = s.get(g.url + "/private", allow_redirects=False, headers=HTML,
              timeout=10)
    assert r.status_code == 302
    r = api.get(g.url + "/private", allow_redirects=False, headers=JSON,
                timeout=10)
    assert r.status_code == 401
    assert api.get(g.url + "/.auth/me", timeout=5).status_code == 401


def test_revalidation_accepted_keeps_session_without_asking_again(
        op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, ["session_revalidate = 2s"],
                      store=session_store)
    s, _ = sign_in(g, "sam@contoso.com")
    time.sleep(2.5)
    assert s.get(g.url + "/private", timeout=10).status_code == 200
    assert op.counter("token_refresh") == 1
    assert g.loggrep(r"refresh result=ok")
    # Validated now: the next requests within the period ask nothing.
    for _ in range(5):
        assert s.get(g.url + "/private", timeout=10).status_code == 200
    assert op.counter("token_refresh") == 1


def test_revalidation_provider_down_keeps_session(op, tmp, upstream,
                                                  session_store):
    """A provider that cannot be reached keeps the session (availability
    first), logged once per attempt, and the session is not asked again
    on every request (a back-off)."""
    g = start_gateway(op, tmp, upstream, ["session_revalidate = 2s"],
                      store=session_store)
    s, _ = sign_in(g, "tom@contoso.com")
    time.sleep(2.5)
    op.stop()
    for _ in range(4):
        r = s.get(g.url + "/private", timeout=15)
        assert r.status_code == 200, (r.status_code, r.text[:300])
    assert g.loggrep(r"refresh result=failed waiters=1 revalidate_in=30s")
    log = g.log()
    assert log.count(" revalidate: ") == 1, log[-3000:]
    assert log.count("refresh result=failed waiters") == 1
    assert "refresh result=ended" not in log


def test_revalidation_provider_5xx_backs_off(op, tmp, upstream):
    """A provider answering 503 to the refresh: the session stays, and one
    refresh is all the provider sees however many requests follow."""
    g = start_gateway(op, tmp, upstream, ["session_revalidate = 2s"])
    s, _ = sign_in(g, "uma@contoso.com")
    op.fault("token_500", sticky=True, grant="refresh_token", status=503)
    time.sleep(2.5)
    for _ in range(6):
        assert s.get(g.url + "/private", timeout=15).status_code == 200
    assert op.counter("token_refresh") == 1
    assert g.loggrep(r'refresh result=failed reason="token endpoint '
                     r'answered 503')
    assert revalidations(g) == 1


def test_revalidation_off(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["session_revalidate = off"])
    s, _ = sign_in(g, "val@contoso.com")
    op.revoke("val@contoso.com")
    time.sleep(1.5)
    assert s.get(g.url + "/private", timeout=10).status_code == 200
    assert op.counter("token_refresh") == 0


def test_revalidation_without_refresh_token_keeps_session(op, tmp, upstream):
    """No refresh token (offline_access not asked for): nothing to
    revalidate with; the session goes on to its lifetime, and the
    provider is not asked."""
    g = start_gateway(op, tmp, upstream, ["session_revalidate = 1s",
                                          "offline_access = off"])
    s, _ = sign_in(g, "walt@contoso.com")
    time.sleep(1.5)
    for _ in range(3):
        assert s.get(g.url + "/private", timeout=10).status_code == 200
    assert op.counter("token_refresh") == 0


def test_idle_timeout_ends_idle_session_and_activity_keeps_it(
        op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, ["session_idle_timeout = 4s"],
                      store=session_store)
    s, _ = sign_in(g, "xena@contoso.com")
    # Used every second for twice the timeout: still signed in.
    start = time.time()
    while time.time() - start < 8:
        r = s.get(g.url + "/private", allow_redirects=False, headers=JSON,
                  timeout=5)
        assert r.status_code == 200, time.time() - start
        time.sleep(1)
    # Then unused for longer than the timeout plus its touch interval
    # (a quarter of it), and a second for whole-second clocks.
    time.sleep(6.5)
    r = s.get(g.url + "/private", allow_redirects=False, headers=HTML,
              timeout=5)
    assert to_sign_in(r), (r.status_code, r.headers)


def test_idle_timeout_off(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["session_idle_timeout = off"])
    s, _ = sign_in(g, "yves@contoso.com")
    time.sleep(1.5)
    assert s.get(g.url + "/private", timeout=5).status_code == 200


def revocations(op):
    return op.requests("revocation")


@pytest.mark.parametrize("method", ["client_secret_basic",
                                    "client_secret_post"])
def test_signout_revokes_refresh_token(op, tmp, upstream, session_store,
                                       method):
    op.config(revocation_endpoint=True)
    g = start_gateway(op, tmp, upstream, ["token_auth_method = " + method],
                      store=session_store)
    s, _ = sign_in(g, "zoe@contoso.com")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(op.endpoint("logout"))
    done = wait_for(lambda: [e for e in revocations(op)
                             if e["status"] is not None])
    assert len(done) == 1, done
    e = done[0]
    assert e["status"] == 200
    assert e["notes"]["token_type_hint"] == "refresh_token"
    assert e["notes"]["refresh_token_known"] is True
    assert e["notes"]["user"] == "zoe@contoso.com"
    assert e["notes"]["client_auth"] == method
    assert g.loggrep(r"revoke id=\w+ result=ok")
    assert e["form"]["token"] not in g.log()
    # The token is spent at the provider.
    assert op.revoke("zoe@contoso.com")["revoked"] == 0


def test_signout_revokes_with_certificate_assertion(op, tmp, upstream):
    """With a client certificate (private_key_jwt) the revocation request
    carries a fresh client assertion, which the provider verifies."""
    from certs import Credential
    from conftest import Gatehouse, free_port
    from signin import gateway_lines
    cred = Credential()
    op.config(revocation_endpoint=True, client_certificates=[cred.cert_pem])
    cert, key = cred.write(tmp)
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    lines = [l for l in gateway_lines(
        op, tmp, port, upstream.url,
        ["client_certificate = " + cert, "client_certificate_key = " + key])
        if not l.startswith("client_secret")]
    g = Gatehouse(tmp, lines, port=port)
    for w in range(2):
        assert g.loggrep(r"provider ready worker=%d" % w, timeout=10)
    s, _ = sign_in(g, "gil@contoso.com")
    assert s.get(g.url + "/.auth/logout", allow_redirects=False,
                 timeout=5).status_code == 302
    done = wait_for(lambda: [e for e in revocations(op)
                             if e["status"] is not None])
    assert len(done) == 1 and done[0]["status"] == 200, done
    assert done[0]["notes"]["client_auth"] == "private_key_jwt"
    assert done[0]["notes"]["refresh_token_known"] is True
    assert "client_secret" not in done[0]["form"]
    assert g.loggrep(r"revoke id=\w+ result=ok")


def test_signout_does_not_wait_for_a_hanging_revocation(op, tmp, upstream):
    op.config(revocation_endpoint=True)
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "amy@contoso.com")
    op.fault("revocation_hold")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    # The sign-out has its answer; the provider holds the revocation,
    # unanswered.
    held = wait_for(lambda: [e for e in revocations(op)
                             if e["notes"].get("held")])
    assert len(held) == 1 and held[0]["status"] is None, held
    assert s.get(g.url + "/private", allow_redirects=False, headers=JSON,
                 timeout=5).status_code == 401
    op.release()
    assert wait_for(lambda: revocations(op)[0]["status"] == 200)
    assert g.loggrep(r"revoke id=\w+ result=ok")


def test_revocation_held_at_stop_is_dropped_cleanly(op, tmp, upstream):
    op.config(revocation_endpoint=True)
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "bea@contoso.com")
    op.fault("revocation_hold")
    assert s.get(g.url + "/.auth/logout", allow_redirects=False,
                 timeout=5).status_code == 302
    assert wait_for(lambda: [e for e in revocations(op)
                             if e["notes"].get("held")])
    assert g.stop() == 0
    assert "revoke id=" in g.log() and "result=dropped" in g.log()
    op.release()


def test_revocation_failure_is_logged_without_the_token(op, tmp, upstream):
    op.config(revocation_endpoint=True)
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "cy@contoso.com")
    op.fault("revocation_error", status=503)
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert g.loggrep(r'revoke id=\w+ result=failed reason="revocation '
                     r'endpoint answered 503 temporarily_unavailable"')
    token = revocations(op)[0]["form"]["token"]
    assert token and token not in g.log()


def test_no_revocation_endpoint_no_revocation(op, tmp, upstream):
    """Entra lists no revocation_endpoint: sign-out sends nothing."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "dan@contoso.com")
    assert s.get(g.url + "/.auth/logout", allow_redirects=False,
                 timeout=5).status_code == 302
    assert op.counter("revocation") == 0
    assert "revoke id=" not in g.log()


def test_logout_hint_from_login_hint_claim(op, tmp, upstream):
    hint = "O.CiQ5ZjE2ZGY0Yi1hYmNkLTQ3ZjAtOTI5Ny1kZDEzNzA1M2E0NWQ"
    op.user("eve@contoso.com", login_hint=hint)
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "eve@contoso.com")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    q = query(r.headers["Location"])
    assert q["logout_hint"] == hint
    assert q["id_token_hint"]
    # The provider receives it as sent.
    r = requests.get(r.headers["Location"], allow_redirects=False, timeout=5)
    assert op.last("logout")["notes"]["logout_hint"] == hint


def test_no_logout_hint_without_login_hint_claim(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "fay@contoso.com")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    q = query(r.headers["Location"])
    assert "logout_hint" not in q and q["id_token_hint"]
