// SPDX-License-Identifier: ISC
// bench/fast_op.mjs: a minimal, fast OpenID Provider for make bench.
//
// Node's http and crypto only (no npm packages).  Auto-login: /authorize
// answers every valid request at once with a 302 carrying the code, so one
// GET completes the provider's part of a sign-in.  The code flow with PKCE
// S256 and a nonce, client_secret_post or client_secret_basic, an RS256
// ID token (2048-bit key, one signature per sign-in); access and refresh
// tokens are opaque strings of Entra-like length (neither gateway verifies
// them), so session records are realistic in size.  No userinfo endpoint
// is advertised, so neither gateway calls one.  Not a test OP: it checks
// only what a benchmark needs to be honest (codes are single use and bound
// to client, redirect URI and PKCE verifier).
//
//   node bench/fast_op.mjs PORT_FILE CLIENT_ID CLIENT_SECRET REDIRECT_URI...
//
// Listens on 127.0.0.1 on a free port, writes it to PORT_FILE, and exits
// on SIGTERM.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const [portFile, clientId, clientSecret, ...redirects] = process.argv.slice(2);
const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
  modulusLength: 2048,
});
const jwk = publicKey.export({ format: 'jwk' });
const kid = crypto.createHash('sha256').update(jwk.n).digest('base64url')
  .slice(0, 16);
const jwks = JSON.stringify({
  keys: [{ kty: 'RSA', use: 'sig', alg: 'RS256', kid, n: jwk.n, e: jwk.e }],
});
const codes = new Map();
let users = 0;
let base = '';
let discovery = '';

const b64u = (b) => Buffer.from(b).toString('base64url');
const rnd = (n) => crypto.randomBytes(n).toString('base64url');

function sign(claims) {
  const head = b64u(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid }));
  const body = b64u(JSON.stringify(claims));
  const sig = crypto.sign('sha256', Buffer.from(head + '.' + body),
    privateKey);
  return head + '.' + body + '.' + b64u(sig);
}

function send(res, status, body, type, extra) {
  res.writeHead(status, Object.assign({
    'content-type': type || 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  }, extra || {}));
  res.end(body);
}

function oauthError(res, status, error) {
  send(res, status, JSON.stringify({ error }));
}

function authorize(res, q) {
  const ru = q.get('redirect_uri');
  if (q.get('client_id') !== clientId || !redirects.includes(ru))
    return send(res, 400, 'bad client_id or redirect_uri', 'text/plain');
  const fail = (e) => {
    const u = new URL(ru);
    u.searchParams.set('error', e);
    if (q.get('state')) u.searchParams.set('state', q.get('state'));
    res.writeHead(302, { location: u.toString(), 'content-length': 0 });
    res.end();
  };
  if (q.get('response_type') !== 'code') return fail('unsupported_response_type');
  if (!(q.get('scope') || '').split(' ').includes('openid'))
    return fail('invalid_scope');
  if (!q.get('state') || !q.get('nonce')) return fail('invalid_request');
  if (q.get('code_challenge_method') !== 'S256' ||
      !/^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') || ''))
    return fail('invalid_request');
  const code = rnd(32);
  const user = q.get('login_hint') || 'user' + (++users) + '@contoso.com';
  codes.set(code, {
    ru, nonce: q.get('nonce'), challenge: q.get('code_challenge'), user,
    scope: q.get('scope'), exp: Date.now() + 600000,
  });
  const u = new URL(ru);
  u.searchParams.set('code', code);
  u.searchParams.set('state', q.get('state'));
  res.writeHead(302, { location: u.toString(), 'content-length': 0 });
  res.end();
}

function token(req, res, body) {
  const f = new URLSearchParams(body);
  let id = f.get('client_id');
  let secret = f.get('client_secret');
  const auth = req.headers.authorization || '';
  if (auth.startsWith('Basic ')) {
    const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
    id = decodeURIComponent(u.replace(/\+/g, ' '));
    secret = decodeURIComponent((p || '').replace(/\+/g, ' '));
  }
  if (id !== clientId || secret !== clientSecret)
    return oauthError(res, 401, 'invalid_client');
  if (f.get('grant_type') !== 'authorization_code')
    return oauthError(res, 400, 'unsupported_grant_type');
  const c = codes.get(f.get('code'));
  codes.delete(f.get('code'));
  if (!c || c.exp < Date.now() || c.ru !== f.get('redirect_uri'))
    return oauthError(res, 400, 'invalid_grant');
  const v = f.get('code_verifier') || '';
  if (crypto.createHash('sha256').update(v).digest('base64url') !==
      c.challenge)
    return oauthError(res, 400, 'invalid_grant');
  const now = Math.floor(Date.now() / 1000);
  const oid = crypto.createHash('sha256').update(c.user).digest('hex');
  const idToken = sign({
    aud: clientId, iss: base, iat: now, nbf: now, exp: now + 3600,
    sub: oid.slice(0, 43), oid: oid.slice(0, 36), tid: 'bench-tenant',
    name: 'Bench User', preferred_username: c.user, email: c.user,
    nonce: c.nonce, ver: '2.0',
  });
  const out = {
    token_type: 'Bearer', scope: c.scope, expires_in: 3600,
    ext_expires_in: 3600,
    // Entra's access tokens are ~1.5 KB JWTs, refresh tokens ~1 KB.
    access_token: rnd(200) + '.' + rnd(800) + '.' + rnd(256),
    id_token: idToken,
  };
  if (c.scope.split(' ').includes('offline_access'))
    out.refresh_token = rnd(750);
  send(res, 200, JSON.stringify(out));
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, base);
  const p = u.pathname;
  if (req.method === 'GET' && p === '/.well-known/openid-configuration')
    return send(res, 200, discovery);
  if (req.method === 'GET' && p === '/keys') return send(res, 200, jwks);
  if (req.method === 'GET' && p === '/authorize')
    return authorize(res, u.searchParams);
  if (req.method === 'GET' && p === '/logout')
    return send(res, 200, 'signed out', 'text/plain');
  if (req.method === 'POST' && p === '/token') {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => token(req, res, Buffer.concat(chunks).toString()));
    return;
  }
  send(res, 404, 'not found', 'text/plain');
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  base = 'http://127.0.0.1:' + port;
  discovery = JSON.stringify({
    issuer: base,
    authorization_endpoint: base + '/authorize',
    token_endpoint: base + '/token',
    jwks_uri: base + '/keys',
    end_session_endpoint: base + '/logout',
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_post',
      'client_secret_basic'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'name',
      'preferred_username', 'email', 'oid', 'tid'],
  });
  fs.writeFileSync(portFile + '.tmp', String(port));
  fs.renameSync(portFile + '.tmp', portFile);
});
// Codes nobody redeemed (an abandoned sign-in) are dropped after 10 minutes.
setInterval(() => {
  const now = Date.now();
  for (const [k, c] of codes) if (c.exp < now) codes.delete(k);
}, 30000).unref();
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
