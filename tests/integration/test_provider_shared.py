# SPDX-License-Identifier: ISC
"""The provider's metadata and keys belong to the process, not to each
worker: one discovery fetch and one JWKS fetch for all workers, one
unknown-kid refetch for all of them, the last good copy kept while the
provider fails; and with an Entra authority, a discovery issuer is accepted
only for the authority's own tenant."""
import base64
import json
import time
import uuid

import pytest
import requests

from conftest import Gatehouse, free_port
from op_client import OP
from signin import (authorize, begin_login, complete, gateway_lines,
                    start_gateway)

WORKERS = 4


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def fresh_login(g):
    """GET /.auth/login on a new connection (so SO_REUSEPORT spreads them
    over the workers); the response."""
    return requests.get(g.url + "/.auth/login?post_login_redirect_uri=/x",
                        headers={"Connection": "close"},
                        allow_redirects=False, timeout=10)


def sign_in(g, user):
    """A whole sign-in on a new connection; the callback's response."""
    s = requests.Session()
    auth = authorize(s, begin_login(g, s), user)
    return complete(g, s, auth)


def b64u(obj):
    raw = json.dumps(obj).encode() if isinstance(obj, dict) else obj
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged_token(op, kid):
    """A JWT naming a kid the provider never published."""
    now = int(time.time())
    return ".".join([
        b64u({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
        b64u({"iss": op.issuer, "aud": op.client_id, "sub": "x",
              "iat": now, "nbf": now, "exp": now + 600, "scp": "read"}),
        b64u(b"\x01" * 256)])


def test_one_discovery_and_one_jwks_fetch_for_all_workers(op, tmp,
                                                          upstream):
    """workers = 4: after startup and sign-ins spread over every worker,
    the provider saw one discovery fetch and one JWKS fetch."""
    g = start_gateway(op, tmp, upstream, ["workers = %d" % WORKERS])
    for _ in range(40):
        r = fresh_login(g)
        assert r.status_code == 302, (r.status_code, r.text[:300])
    for i in range(8):
        r = sign_in(g, "u%d@contoso.com" % i)
        assert r.status_code == 302, (r.status_code, r.text[:300])
    assert op.counter("discovery") == 1, g.log()
    assert op.counter("jwks") == 1, g.log()


def test_provider_failing_after_first_fetch_signs_in_on_every_worker(
        op, tmp, upstream):
    """Discovery and the JWKS answer once, then fail every time: sign-ins
    started on every worker all go to the provider (302, never 503); ID
    tokens signed with the known key still verify after a failed unknown-
    kid refetch and after the failed retries that follow it (the last good
    copy stays)."""
    op.fault("discovery_down_after", sticky=True, after=1)
    op.fault("jwks_down_after", sticky=True, after=1)
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    g = Gatehouse(tmp, gateway_lines(op, tmp, port, upstream.url,
                                     ["workers = %d" % WORKERS]),
                  port=port)
    assert g.loggrep(r"provider ready", timeout=10), g.log()
    # Give every worker time to have fetched (or failed) on its own.
    time.sleep(1.5)
    codes = []
    for _ in range(40):
        r = fresh_login(g)
        codes.append(r.status_code)
        if r.status_code == 302:
            assert r.headers["Location"].startswith(
                op.endpoint("authorize")), r.headers["Location"]
    assert codes == [302] * 40, (codes, g.log()[-3000:])
    assert sign_in(g, "a@contoso.com").status_code == 302
    # An unknown kid asks for the keys again; that fetch fails.
    op.fault("id_token_unknown_kid")
    r = sign_in(g, "b@contoso.com")
    assert r.status_code == 401, r.status_code
    assert g.loggrep(r'jwks_refetch reason="unknown kid"'), g.log()
    assert g.loggrep(r"provider_error what=jwks", timeout=5), g.log()
    # A failed fetch is retried with backoff (a whole discovery flight);
    # those fail too.
    assert g.loggrep(r"provider_error what=discovery", timeout=10), g.log()
    for i in range(6):
        r = sign_in(g, "c%d@contoso.com" % i)
        assert r.status_code == 302, (r.status_code, r.text[:300])
    assert op.counter("fault:discovery_down_after") >= 1
    assert op.counter("fault:jwks_down_after") >= 1


def test_unknown_kid_refetch_is_once_for_the_process(op, tmp, upstream):
    """Tokens naming an unknown kid on every worker: the JWKS is fetched
    again once, not once per worker (the rate limit is process-wide)."""
    g = start_gateway(op, tmp, upstream, ["workers = %d" % WORKERS],
                      routes=["route /api/* bearer",
                              "route /* allow authenticated"])
    jwks0 = op.counter("jwks")
    for i in range(32):
        r = requests.get(g.url + "/api/x", headers={
            "Authorization": "Bearer " + forged_token(op, "forged-%d" % i),
            "Connection": "close"}, timeout=10)
        assert r.status_code == 401, (r.status_code, r.text[:300])
    assert g.loggrep(r'jwks_refetch reason="unknown kid"'), g.log()
    time.sleep(0.5)
    assert op.counter("jwks") == jwks0 + 1, g.log()


# -- an Entra authority: the issuer is bound to the tenant ------------------
def entra_gateway(op, tmp, upstream, issuer):
    op.fault("discovery_wrong_issuer", sticky=True, issuer=issuer)
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    return Gatehouse(tmp, gateway_lines(op, tmp, port, upstream.url),
                     port=port)


OTHER = str(uuid.uuid4())


@pytest.mark.parametrize("issuer", [
    "https://%s.ciamlogin.com/%s/v2.0" % (OTHER, OTHER),
    "https://%s.ciamlogin.com/%s/v2.0/" % (OTHER, OTHER),
    "https://%s.ciamlogin.com/" % OTHER,
    # the right tenant's host, another tenant's path
    "https://{tid}.ciamlogin.com/%s/v2.0" % OTHER,
    "https://{tid}.ciamlogin.com/{tid}/v2.0/extra",
    # hosts that are neither a ciamlogin tenant nor the authority's
    "https://{tid}.ciamlogin.com.evil.example/{tid}/v2.0",
    "https://login.evil.example/{tid}/v2.0",
    "https://ciamlogin.com/{tid}/v2.0",
])
def test_entra_issuer_of_another_tenant_refused(op, tmp, upstream, issuer):
    """authority = .../contoso.onmicrosoft.com, whose discovery document's
    endpoints name tenant {tid}: an issuer naming another tenant (or on
    another host) is refused and sign-in is unavailable."""
    issuer = issuer.replace("{tid}", op.tenant_id)
    g = entra_gateway(op, tmp, upstream, issuer)
    assert g.loggrep(r"provider_error what=discovery reason=\"discovery "
                     r"issuer is not the authority's tenant\"",
                     timeout=10), g.log()
    assert not g.loggrep(r"provider ready", timeout=0)
    r = fresh_login(g)
    assert r.status_code == 503, (r.status_code, r.text[:300])


@pytest.mark.parametrize("form", ["{tid}.ciamlogin.com/{tid}/v2.0",
                                  "{TID}.CIAMLOGIN.com/{tid}/v2.0/",
                                  "{tid}.ciamlogin.com/{tid}",
                                  "{tid}.ciamlogin.com"])
def test_entra_guid_issuer_of_the_tenant_accepted(op, tmp, upstream, form):
    """The GUID-form issuer of the authority's own tenant (the tenant the
    document's token endpoint names) is accepted."""
    issuer = "https://" + form.replace("{tid}", op.tenant_id).replace(
        "{TID}", op.tenant_id.upper())
    g = entra_gateway(op, tmp, upstream, issuer)
    for w in range(2):
        assert g.loggrep(r"provider ready worker=%d" % w,
                         timeout=10), g.log()
    r = fresh_login(g)
    assert r.status_code == 302, (r.status_code, r.text[:300])
