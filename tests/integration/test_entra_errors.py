# SPDX-License-Identifier: ISC
"""Entra's AADSTS errors said in words a person can act on, through the
real binary against tests/op/op.py answering as Entra does: an error at
the redirect URI (error=...&error_description=AADSTSnnnn: ... Trace ID:
... Correlation ID: ... Timestamp: ...) and a refusal of the token
endpoint (error_codes, trace_id, correlation_id, timestamp).

- Each number gatehouse knows gets a page saying what happened and who
  does what next, with the number and the ids for support; never the
  description's words (they may name the user), on the page or in the log.
- The log line carries the AADSTS number, trace_id, correlation_id and
  timestamp."""
import html
import re
import uuid

import pytest
import requests

from op_client import OP
from signin import authorize, begin_login, complete, start_gateway

HTML = {"Accept": "text/html"}
SECRET_WORDS = "alice.private@contoso.com"


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def entra_description(code, words):
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    return trace, corr, (
        "AADSTS%d: %s The account %s tried. Trace ID: %s Correlation ID: %s "
        "Timestamp: 2026-12-05 05:40:11Z" % (code, words, SECRET_WORDS,
                                             trace, corr))


def page_text(r):
    return html.unescape(re.sub(r"<[^>]+>", " ", r.text))


# code, error, status, words on the page
CALLBACK = [
    (65001, "consent_required", 502, "administrator"),
    (65004, "access_denied", 401, "declined the permissions"),
    (50011, "invalid_request", 502, "redirect_uri"),
    (7000215, "invalid_client", 502, "client secret"),
    (7000222, "invalid_client", 502, "has expired"),
    (700027, "invalid_client", 502, "certificate"),
    (50105, "access_denied", 403, "not assigned"),
    (50034, "access_denied", 403, "cannot sign up"),
    (90002, "invalid_tenant", 502, "does not exist"),
    (900023, "invalid_request", 502, "not a valid tenant"),
]


@pytest.mark.parametrize("code,error,status,words", CALLBACK)
def test_callback_aadsts_page_and_log(op, tmp, upstream, code, error,
                                      status, words):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    trace, corr, desc = entra_description(code, "Something happened.")
    op.fault("authorize_error", error=error, error_description=desc)
    r = complete(g, s, authorize(s, url, "quinn@x.com"))
    assert r.status_code == status, (r.status_code, r.text[:500])
    text = page_text(r)
    assert words in text, text
    assert "AADSTS%d" % code in text and trace in text and corr in text
    # The description's words never reach the page nor the log.
    assert SECRET_WORDS not in r.text and "Something happened" not in r.text
    assert "Try again" in text
    assert g.loggrep(r"callback id=\w+ result=provider_error error=\"%s\" "
                     r"explained=\w+ AADSTS%d trace_id=%s correlation_id=%s "
                     r"timestamp=2026-12-05T05:40:11Z"
                     % (error, code, trace, corr)), g.log()[-2000:]
    assert SECRET_WORDS not in g.log()


def test_callback_unknown_aadsts_keeps_ids_not_words(op, tmp, upstream):
    """A number gatehouse has no words for: the generic page with the
    reference, and the log line with the ids, never the description."""
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    trace, corr, desc = entra_description(12345, "Odd.")
    op.fault("authorize_error", error="server_error", error_description=desc)
    r = complete(g, s, authorize(s, url, "quinn@x.com"))
    assert r.status_code == 401
    text = page_text(r)
    assert "Sign-in failed" in text and "server_error" in text
    assert "AADSTS12345" in text and trace in text
    assert SECRET_WORDS not in r.text and "Odd." not in text
    assert g.loggrep(r"result=provider_error error=\"server_error\" "
                     r"AADSTS12345 trace_id=%s" % trace), g.log()[-2000:]
    assert SECRET_WORDS not in g.log()


def test_cancel_without_known_number_is_cancelled_page(op, tmp, upstream):
    """access_denied with a number gatehouse does not explain (the OP's
    default AADSTS50126) stays the cancel page, ids and no words."""
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    op.fault("authorize_error", error="access_denied")
    r = complete(g, s, authorize(s, url, "quinn@x.com"))
    assert r.status_code == 401
    assert "<h1>Sign-in was cancelled</h1>" in r.text
    assert "AADSTS50126" in r.text and "cancelled the sign-in" not in r.text


@pytest.mark.parametrize("code,error,status,words,result", [
    (7000215, "invalid_client", 502, "client secret", "invalid_client"),
    (7000222, "invalid_client", 502, "has expired", "invalid_client"),
    (700027, "invalid_client", 502, "certificate", "invalid_client"),
    (50011, "invalid_client", 502, "redirect_uri", "invalid_client"),
    (65001, "invalid_grant", 502, "admin consent", "token_refused"),
    (50105, "invalid_grant", 403, "not assigned", "token_refused"),
])
def test_token_endpoint_aadsts_page_and_log(op, tmp, upstream, code, error,
                                            status, words, result):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    op.fault("token_error", error=error, status=401 if error ==
             "invalid_client" else 400, error_code=code,
             error_description="AADSTS%d: words about %s." % (code,
                                                              SECRET_WORDS))
    r = complete(g, s, authorize(s, url, "quinn@x.com"))
    assert r.status_code == status, (r.status_code, r.text[:500])
    text = page_text(r)
    assert words in text and "AADSTS%d" % code in text, text
    assert SECRET_WORDS not in r.text
    assert g.loggrep(r"callback id=\w+ result=%s reason=\"token endpoint "
                     r"refused[^\"]*AADSTS%d trace_id=[0-9a-f-]{36} "
                     r"correlation_id=[0-9a-f-]{36} timestamp=\d{4}-\d\d-\d\d"
                     r"T\d\d:\d\d:\d\dZ[^\"]*\" explained=\w+"
                     % (result, code)), g.log()[-2000:]
    assert SECRET_WORDS not in g.log()


def test_tenant_not_found_at_start(op, tmp, upstream):
    """An authority naming no tenant: the start logs "tenant not found"
    with the number (not "unreachable"), and sign-in's 503 page tells the
    person to tell the administrator."""
    import os
    from conftest import Gatehouse, free_port
    port = free_port()
    g = Gatehouse(tmp, [
        "upstream = " + upstream.url,
        "authority = %s/nosuch.onmicrosoft.com" % op.base,
        "client_id = " + op.client_id, "client_secret = " + op.client_secret,
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
        "session_store = " + os.path.join(tmp, "s"),
        "session_key_file = " + os.path.join(tmp, "k"),
        "route /public/* allow anonymous", "route /* allow authenticated"],
        port=port)
    assert g.loggrep(r"provider_error what=discovery reason=\"tenant not "
                     r"found \(answered HTTP 400, AADSTS90002\): the provider "
                     r"knows no directory by the name or id in authority\" "
                     r"kind=http", timeout=10), g.log()
    r = requests.get(g.url + "/.auth/login", headers=HTML, timeout=5)
    assert r.status_code == 503
    text = page_text(r)
    assert "directory (tenant) this site is configured for was not found" \
        in text and "administrator" in text, text
    assert "unreachable" not in text
    # Anonymous routes keep working.
    assert requests.get(g.url + "/public/a", timeout=5).status_code == 200


# -- ID-token algorithms ------------------------------------------------------
@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_id_token_alg_listed_in_metadata_accepted(op, tmp, upstream, alg):
    """The provider signs ID tokens with alg and its metadata lists it
    (id_token_signing_alg_values_supported): sign-in works, and a refresh's
    new ID token too."""
    from signin import sign_in
    op.config(id_token_alg=alg)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    s, _ = sign_in(g, "al@contoso.com")
    assert s.get(g.url + "/private", timeout=10).status_code == 200
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert r.status_code == 200, r.text[:300]
    tok = [e for e in op.requests("token") if e["status"] == 200]
    assert len(tok) == 2
    assert s.get(g.url + "/private", timeout=10).status_code == 200


@pytest.mark.parametrize("alg", ["PS256", "ES256"])
def test_id_token_alg_not_listed_refused(op, tmp, upstream, alg):
    """The same token when the metadata lists only RS256: refused."""
    op.config(id_token_alg=alg)
    op.fault("discovery_override", sticky=True,
             fields={"id_token_signing_alg_values_supported": ["RS256"]})
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    r = complete(g, s, authorize(s, url, "al@contoso.com"))
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert g.loggrep(r"result=invalid_id_token reason=\"[^\"]*%s" % alg), \
        g.log()[-2000:]


@pytest.mark.parametrize("listed", [["none"], ["HS256"], ["none", "HS256"]])
def test_none_and_hmac_never_accepted_even_when_listed(op, tmp, upstream,
                                                       listed):
    op.fault("discovery_override", sticky=True,
             fields={"id_token_signing_alg_values_supported": listed})
    g = start_gateway(op, tmp, upstream)
    for fault in ("id_token_alg_none", "id_token_hs256_pubkey"):
        s = requests.Session()
        url = begin_login(g, s, "/private")
        op.fault(fault)
        r = complete(g, s, authorize(s, url, "al@contoso.com"))
        assert r.status_code == 401, (fault, r.status_code, r.text[:300])
