// SPDX-License-Identifier: ISC
//
// A tiny stand-in for Microsoft Graph, for gatehouse's demo and tests:
//
//   node graph.js --port P --authority http://127.0.0.1:OP/<tenant>.onmicrosoft.com
//       [--port-file F] [--host 127.0.0.1]
//
// GET /v1.0/me with "Authorization: Bearer <token>" answers Graph-shaped
// JSON about the signed-in user when the token is a JWT the demo OP
// (server.js) signed for the resource https://graph.microsoft.com: the
// signature is checked against the OP's jwks_uri, iss against the OP's
// discovery issuer, aud, exp/nbf and the scp claim (User.Read).  The
// OP's metadata comes from {authority}/v2.0/.well-known/openid-configuration,
// fetched on first use.  Errors have Graph's shape (entra.md section 5):
//   401 {"error":{"code":"InvalidAuthenticationToken","message":...}}
//   403 {"error":{"code":"Authorization_RequestDenied","message":...}}

import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { createRemoteJWKSet, jwtVerify, errors as joseErrors } from 'jose';

const GRAPH_RESOURCE = 'https://graph.microsoft.com';

function usage(msg) {
  if (msg) process.stderr.write(`graph: ${msg}\n`);
  process.stderr.write('usage: node graph.js --port P --authority URL [--port-file F] [--host H]\n');
  process.exit(2);
}

let opt;
try {
  opt = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      authority: { type: 'string' },
      'port-file': { type: 'string' },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
if (!opt.authority) usage('--authority is required');
const authority = opt.authority.replace(/\/+$/, '');

let metadata = null; // { issuer, jwks } once discovery worked

async function provider() {
  if (metadata) return metadata;
  const url = `${authority}/v2.0/.well-known/openid-configuration`;
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`discovery ${url}: HTTP ${r.status}`);
  const doc = await r.json();
  metadata = {
    issuer: doc.issuer,
    jwks: createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: 5000 }),
  };
  return metadata;
}

function send(res, status, obj, extra = {}) {
  const body = JSON.stringify(obj, null, 2);
  res.writeHead(status, {
    'Content-Type': 'application/json; odata.metadata=minimal; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'request-id': randomUUID(),
    ...extra,
  });
  res.end(body);
}

function graphError(res, status, code, message, extra) {
  send(res, status, {
    error: {
      code,
      message,
      innerError: { date: new Date().toISOString().replace(/\.\d+Z$/, ''), 'request-id': randomUUID() },
    },
  }, extra);
}

function unauthorized(res, message) {
  graphError(res, 401, 'InvalidAuthenticationToken', message, {
    'WWW-Authenticate': `Bearer realm="", authorization_uri="${authority}/oauth2/v2.0/authorize", client_id="00000003-0000-0000-c000-000000000000"`,
  });
}

async function me(req, res, url) {
  const auth = req.headers.authorization || '';
  const m = auth.match(/^Bearer[ ]+([^ ]+)$/i);
  if (!m || !m[1]) return unauthorized(res, 'Access token is empty.');
  let meta;
  try {
    meta = await provider();
  } catch (e) {
    return graphError(res, 503, 'serviceNotAvailable', `Cannot reach the identity provider: ${e.message}`);
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(m[1], meta.jwks, {
      issuer: meta.issuer,
      audience: GRAPH_RESOURCE,
      algorithms: ['RS256'],
      clockTolerance: 5,
    }));
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) {
      return unauthorized(res, 'Access token has expired or is not yet valid.');
    }
    if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === 'nbf') {
      return unauthorized(res, 'Access token has expired or is not yet valid.');
    }
    return unauthorized(res, 'Access token validation failure. Invalid audience, issuer or signature.');
  }
  const scopes = String(payload.scp || '').split(' ');
  if (!scopes.includes('User.Read')) {
    return graphError(res, 403, 'Authorization_RequestDenied',
      'Insufficient privileges to complete the operation.');
  }
  const name = payload.name || '';
  const words = name.split(' ').filter(Boolean);
  const user = {
    businessPhones: [],
    displayName: name || null,
    givenName: words[0] || null,
    jobTitle: null,
    mail: payload.preferred_username || null,
    mobilePhone: null,
    officeLocation: null,
    preferredLanguage: null,
    surname: words.length > 1 ? words.slice(1).join(' ') : null,
    userPrincipalName: payload.upn || payload.preferred_username || null,
    id: payload.oid,
  };
  let body = { '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#users/$entity`, ...user };
  const select = url.searchParams.get('$select');
  if (select) {
    const keep = select.split(',').map((s) => s.trim()).filter(Boolean);
    body = { '@odata.context': `https://graph.microsoft.com/v1.0/$metadata#users(${keep.join(',')})/$entity` };
    for (const k of keep) body[k] = k in user ? user[k] : null;
  }
  return send(res, 200, body);
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  if (url.pathname === '/v1.0/me' || url.pathname === '/v1.0/me/') {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      graphError(res, 405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.');
      return;
    }
    me(req, res, url).catch((e) => {
      process.stderr.write(`graph: ${e.stack || e}\n`);
      if (!res.headersSent) graphError(res, 500, 'generalException', 'An internal error occurred.');
    });
    return;
  }
  graphError(res, 400, 'BadRequest', `Resource not found for the segment '${url.pathname.split('/').filter(Boolean).pop() || ''}'.`);
});

server.listen(Number(opt.port), opt.host, () => {
  const { port } = server.address();
  if (opt['port-file']) {
    writeFileSync(`${opt['port-file']}.tmp`, `${port}\n`);
    renameSync(`${opt['port-file']}.tmp`, opt['port-file']);
  }
  process.stdout.write(`graph: listening on http://${opt.host}:${port}/v1.0 (authority ${authority})\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
