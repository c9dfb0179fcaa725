// SPDX-License-Identifier: ISC
//
// gatehouse demo OpenID Provider: panva's oidc-provider dressed as a
// Microsoft Entra External ID tenant, for `make demo`, the integration
// tests and the browser tests.  Never use it for anything real: every
// name and password is accepted and all state lives in memory.
//
//   node server.js --port P --client-id ID --client-secret S \
//       --redirect-uri URI --post-logout-redirect-uri URI [--port-file F]
//
// (or the secret in the environment variable DEMO_OP_CLIENT_SECRET).
// With --client-certificate FILE (a PEM certificate) the client proves
// itself with private_key_jwt instead, as an Entra app registration with a
// certificate credential: assertions signed (PS256 or RS256) by that
// certificate's key, each jti used once; the secret is then not accepted.
//
// What looks like Entra (see /work/shared/entra.md sections 1 and 5):
//   authority  http://127.0.0.1:P/<tenant-name>.onmicrosoft.com
//   discovery  {authority}/v2.0/.well-known/openid-configuration
//              (and /<tenant-id>/v2.0/.well-known/openid-configuration)
//   issuer     http://127.0.0.1:P/<tenant-id>/v2.0   -- the GUID form, so
//              "issuer != authority" exactly as on ciamlogin.com
//   endpoints  /<tenant-id>/oauth2/v2.0/{authorize,token,logout},
//              /<tenant-id>/discovery/v2.0/keys, /<tenant-id>/openid/v2.0/userinfo
//   ID token   RS256, claims sub oid tid ver name preferred_username email
//              without extra scopes
//   Graph      scope User.Read gives a JWT access token for the resource
//              https://graph.microsoft.com (aud), with scp, oid, tid, name
//   prompt=create  shows the sign-up page
//   refresh    tokens are issued to the client (as Entra does when MSAL
//              asks for offline_access) and rotate on every use
//
// Test hooks: the password "wrong" is refused ("Your password is
// incorrect"), the "Cancel" button answers error=access_denied.

import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider, { interactionPolicy } from 'oidc-provider';
import { generateKeyPair, exportJWK, importX509 } from 'jose';

const GRAPH_RESOURCE = 'https://graph.microsoft.com';
const GRAPH_SCOPES = ['User.Read', 'https://graph.microsoft.com/User.Read'];

function usage(msg) {
  if (msg) process.stderr.write(`demo-op: ${msg}\n`);
  process.stderr.write(
    'usage: node server.js --port P --client-id ID --client-secret S\n'
    + '         (or DEMO_OP_CLIENT_SECRET in the environment)\n'
    + '         --redirect-uri URI [--redirect-uri URI ...]\n'
    + '         --post-logout-redirect-uri URI [...] [--port-file F]\n'
    + '         [--host 127.0.0.1] [--tenant-id GUID] [--tenant-name NAME]\n'
    + '         [--access-token-ttl SECONDS] [--id-token-ttl SECONDS]\n'
    + '         [--client-certificate PEM]  (private_key_jwt; no secret)\n',
  );
  process.exit(2);
}

function options() {
  let v;
  try {
    v = parseArgs({
      options: {
        port: { type: 'string', default: '0' },
        host: { type: 'string', default: '127.0.0.1' },
        'port-file': { type: 'string' },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        'client-certificate': { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true },
        'tenant-id': { type: 'string', default: 'a5e1ad05-f9e6-4cb4-a356-cec8b2267762' },
        'tenant-name': { type: 'string', default: 'gatehousedemo' },
        'access-token-ttl': { type: 'string', default: '3600' },
        'id-token-ttl': { type: 'string', default: '3600' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    usage(e.message);
  }
  if (v.help) usage();
  // The secret may come from the environment, out of sight of ps(1).
  v['client-secret'] ||= process.env.DEMO_OP_CLIENT_SECRET;
  const required = v['client-certificate'] ? ['client-id', 'redirect-uri']
    : ['client-id', 'client-secret', 'redirect-uri'];
  for (const k of required) {
    if (!v[k]) usage(`--${k} is required`);
  }
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v['tenant-id'])) {
    usage('--tenant-id must be a lower-case GUID');
  }
  if (!/^[a-z0-9-]+$/.test(v['tenant-name'])) usage('--tenant-name must be [a-z0-9-]+');
  const port = Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage('bad --port');
  return {
    port,
    host: v.host,
    portFile: v['port-file'],
    clientId: v['client-id'],
    clientSecret: v['client-secret'],
    clientCertificate: v['client-certificate'],
    redirectUris: v['redirect-uri'],
    postLogoutRedirectUris: v['post-logout-redirect-uri'] || [],
    tenantId: v['tenant-id'],
    tenantName: v['tenant-name'],
    accessTokenTTL: Number(v['access-token-ttl']) || 3600,
    idTokenTTL: Number(v['id-token-ttl']) || 3600,
  };
}

// ---------------------------------------------------------------- accounts

const accounts = new Map(); // accountId (= sub) -> profile

function hashId(...parts) {
  return createHash('sha256').update(parts.join('\0')).digest();
}

function guidFrom(buf) {
  const h = Buffer.from(buf.subarray(0, 16));
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function titleCase(s) {
  return s.split(/[._\-\s]+/).filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1)).join(' ');
}

// Find or create the account for what was typed in the user-name box.
function upsertAccount(opt, typed, displayName) {
  const input = typed.trim();
  const email = input.includes('@')
    ? input.toLowerCase()
    : `${input.toLowerCase().replace(/[^a-z0-9._-]+/g, '.')}@${opt.tenantName}.onmicrosoft.com`;
  const oid = guidFrom(hashId('oid', opt.tenantId, email));
  const sub = hashId('sub', oid).toString('base64url').slice(0, 43);
  let acct = accounts.get(sub);
  if (!acct) {
    const name = displayName || titleCase(input.includes('@') ? input.split('@')[0] : input) || email;
    const words = name.split(' ');
    acct = {
      sub,
      oid,
      email,
      name,
      given_name: words[0],
      family_name: words.length > 1 ? words.slice(1).join(' ') : null,
      created: new Date().toISOString(),
    };
    accounts.set(sub, acct);
  } else if (displayName) {
    acct.name = displayName;
  }
  return acct;
}

// ---------------------------------------------------------------- HTML

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f2f1;margin:0;color:#1b1b1b}
.card{max-width:380px;margin:60px auto;background:#fff;padding:32px 40px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
.brand{font-size:13px;color:#605e5c;margin-bottom:16px}
h1{font-size:24px;font-weight:600;margin:0 0 16px}
label{display:block;font-size:13px;margin:12px 0 4px}
input[type=text],input[type=password],input[type=email]{width:100%;box-sizing:border-box;padding:6px 8px;font-size:15px;border:0;border-bottom:1px solid #666}
.row{margin-top:24px;display:flex;gap:8px;justify-content:flex-end}
button{padding:6px 20px;font-size:15px;border:1px solid #0067b8;background:#0067b8;color:#fff;cursor:pointer}
button.secondary{background:#ccc;border-color:#ccc;color:#000}
.err{color:#a80000;font-size:14px;margin:8px 0}
.hint{font-size:13px;color:#605e5c;margin-top:16px}
a{color:#0067b8}
`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body><div class="card"><div class="brand">gatehouse demo tenant &middot; not a real identity provider</div>
${body}</div></body></html>`;
}

function signInPage(uid, base, { hint, error, client }) {
  return page('Sign in', `<h1>Sign in</h1>
<p class="hint">to ${esc(client)}. Any name and password will do.</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${esc(base)}/interaction/${esc(uid)}/login" autocomplete="off">
<label for="username">Email or user name</label>
<input type="text" id="username" name="username" value="${esc(hint)}" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<div class="row">
<button type="submit" class="secondary" name="cancel" value="1" formnovalidate>Cancel</button>
<button type="submit" id="signin">Sign in</button>
</div></form>
<p class="hint">No account? <a id="create" href="${esc(base)}/interaction/${esc(uid)}?signup=1">Create one</a></p>`);
}

function signUpPage(uid, base, { hint, error, client }) {
  return page('Create account', `<h1>Create account</h1>
<p class="hint">for ${esc(client)}. Any values will do.</p>
${error ? `<p class="err" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${esc(base)}/interaction/${esc(uid)}/signup" autocomplete="off">
<label for="email">Email</label>
<input type="text" id="email" name="email" value="${esc(hint)}" required autofocus>
<label for="displayName">Display name</label>
<input type="text" id="displayName" name="displayName">
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<div class="row">
<button type="submit" class="secondary" name="cancel" value="1" formnovalidate>Cancel</button>
<button type="submit" id="signup">Create</button>
</div></form>
<p class="hint">Already have an account? <a id="signin-link" href="${esc(base)}/interaction/${esc(uid)}">Sign in</a></p>`);
}

// ---------------------------------------------------------------- provider

async function makeProvider(opt, origin) {
  const base = `/${opt.tenantId}`; // where the provider is mounted
  const issuer = `${origin}${base}/v2.0`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = randomBytes(12).toString('base64url');
  jwk.use = 'sig';
  jwk.alg = 'RS256';

  const policy = interactionPolicy.base();
  // prompt=create (OpenID Connect "Initiating User Registration"): a
  // requestable prompt placed first, answered by the sign-up page.
  policy.add(new interactionPolicy.Prompt({ name: 'create', requestable: true }), 0);

  const client = {
    client_id: opt.clientId,
    client_secret: opt.clientSecret,
    client_name: 'gatehouse demo',
    redirect_uris: opt.redirectUris,
    post_logout_redirect_uris: opt.postLogoutRedirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // client_secret_post and client_secret_basic are both accepted
    // whichever of the two is registered.
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'RS256',
  };
  if (opt.clientCertificate) {
    // The certificate's public key, with no alg: PS256 and RS256 both.
    const pub = await importX509(readFileSync(opt.clientCertificate, 'utf8'),
      'RS256', { extractable: true });
    client.token_endpoint_auth_method = 'private_key_jwt';
    client.jwks = { keys: [await exportJWK(pub)] };
    delete client.client_secret;
  }

  const configuration = {
    clients: [client],
    jwks: { keys: [jwk] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      // 127.0.0.1 cookies are shared by every port: keep clear of the
      // gateway's and the app's names.
      names: {
        session: 'demo_op_session',
        interaction: 'demo_op_interaction',
        resume: 'demo_op_resume',
      },
    },
    routes: {
      authorization: '/oauth2/v2.0/authorize',
      token: '/oauth2/v2.0/token',
      end_session: '/oauth2/v2.0/logout',
      jwks: '/discovery/v2.0/keys',
      userinfo: '/openid/v2.0/userinfo',
      revocation: '/oauth2/v2.0/revoke',
      introspection: '/oauth2/v2.0/introspect',
    },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: {
      openid: ['sub', 'oid', 'tid', 'ver', 'name', 'preferred_username', 'email'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    conformIdTokenClaims: false,
    pkce: { required: () => true, methods: ['S256'] },
    clientAuthMethods: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    responseTypes: ['code'],
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || opt.accessTokenTTL,
      AuthorizationCode: 600,
      IdToken: opt.idTokenTTL,
      RefreshToken: 24 * 60 * 60,
      Interaction: 60 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
    },
    // Entra hands a refresh token to every web app that asks for
    // offline_access without prompt=consent (MSAL always asks);
    // oidc-provider would drop offline_access unless prompt=consent.
    issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // ... and the refresh token outlives the browser session at the OP.
    expiresWithSession: () => false,
    async findAccount(ctx, sub) {
      const acct = accounts.get(sub);
      if (!acct) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            oid: acct.oid,
            tid: opt.tenantId,
            ver: '2.0',
            name: acct.name,
            preferred_username: acct.email,
            email: acct.email,
            email_verified: true,
            given_name: acct.given_name,
            ...(acct.family_name ? { family_name: acct.family_name } : {}),
          };
        },
      };
    },
    // A first-party app with admin consent, as the External ID sample
    // sets up: whatever is asked for is granted, no consent screen.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId
        || oidc.session.grantIdFor(oidc.client.clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (!grant) {
        grant = new oidc.provider.Grant({
          clientId: oidc.client.clientId,
          accountId: oidc.session.accountId,
        });
      }
      grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
      if (oidc.requestParamClaims.size) grant.addOIDCClaims([...oidc.requestParamClaims]);
      for (const [indicator, rs] of Object.entries(oidc.resourceServers)) {
        grant.addResourceScope(indicator, rs.scope);
      }
      await grant.save();
      return grant;
    },
    interactions: {
      policy,
      url: (ctx, interaction) => `${base}/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // Entra signs out without asking: submit the form at once (a
          // client without JavaScript posts it like any other form).
          const auto = form.replace('</form>',
            '<input type="hidden" name="logout" value="yes"/></form>');
          ctx.body = page('Signing out', `<h1>Signing out</h1>${auto}
<p>Signing you out of the demo tenant&hellip;</p>
<div class="row"><button type="submit" form="op.logoutForm" id="logout">Sign out</button></div>
<script>document.getElementById('op.logoutForm').submit()</script>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<h1>You signed out of your account</h1>'
            + '<p>It\'s a good idea to close all browser windows.</p>');
        },
      },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      claimsParameter: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // No resource parameter (MSAL sends none): a Graph scope in the
        // request means the Graph resource, as on Entra.
        defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          const asked = (ctx.oidc.params.scope || '').split(' ');
          return asked.some((s) => GRAPH_SCOPES.includes(s)) ? GRAPH_RESOURCE : undefined;
        },
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, indicator) {
          if (indicator.replace(/\/$/, '') !== GRAPH_RESOURCE) {
            throw new Provider.errors.InvalidTarget(`unknown resource ${indicator}`);
          }
          return {
            scope: GRAPH_SCOPES.join(' '),
            audience: GRAPH_RESOURCE,
            accessTokenTTL: opt.accessTokenTTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // Graph reads who the caller is from the access token (Entra puts
    // oid, tid, name, upn and scp in it).
    async extraTokenClaims(ctx, token) {
      const acct = token.accountId ? accounts.get(token.accountId) : undefined;
      if (!acct) return undefined;
      return {
        oid: acct.oid,
        tid: opt.tenantId,
        name: acct.name,
        preferred_username: acct.email,
        upn: acct.email,
        scp: [...(token.scopes || [])].filter((s) => GRAPH_SCOPES.includes(s))
          .map((s) => s.replace(`${GRAPH_RESOURCE}/`, '')).join(' '),
      };
    },
    discovery: {
      tenant_region_scope: 'EU',
      cloud_instance_name: 'ciamlogin.com',
      msgraph_host: 'graph.microsoft.com',
      prompt_values_supported: ['none', 'login', 'consent', 'create'],
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<h1>Sorry, we couldn't sign you in</h1>${
        Object.entries(out).map(([k, v]) => `<p><b>${esc(k)}</b>: ${esc(v)}</p>`).join('')}`);
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.proxy = false;
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`demo-op: server_error: ${err.stack || err}\n`);
  });
  return { provider, issuer, base };
}

// ---------------------------------------------------------------- HTTP

function readForm(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('form too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function send(res, status, type, body, extra = {}) {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(body);
}

async function interaction(ctx, req, res, url) {
  const { provider, base } = ctx;
  const m = url.pathname.slice(base.length).match(/^\/interaction\/([A-Za-z0-9_-]+)(\/(login|signup))?$/);
  if (!m) return send(res, 404, 'text/plain', 'not found\n');
  const [, uid, , action] = m;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (e) {
    return send(res, 400, 'text/html; charset=utf-8', page('Sign-in error',
      '<h1>This sign-in request has expired</h1><p>Go back to the application and sign in again.</p>'));
  }
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch\n');
  const { prompt, params } = details;
  const client = (await provider.Client.find(params.client_id))?.clientName || params.client_id;
  const hint = params.login_hint || '';
  const html = (s) => send(res, 200, 'text/html; charset=utf-8', s);

  if (prompt.name === 'consent') {
    // Only prompt=consent gets here (loadExistingGrant grants the rest):
    // admin consent is assumed, so answer it at once.
    let { grantId } = details;
    if (!grantId) {
      const grant = new provider.Grant({
        accountId: details.session.accountId, clientId: params.client_id,
      });
      grant.addOIDCScope('openid');
      grantId = await grant.save();
    }
    return provider.interactionFinished(req, res, { consent: { grantId } });
  }

  const signup = prompt.name === 'create' || url.searchParams.get('signup') === '1';
  if (req.method === 'GET' && !action) {
    return html(signup ? signUpPage(uid, base, { hint, client }) : signInPage(uid, base, { hint, client }));
  }
  if (req.method !== 'POST' || !action) return send(res, 405, 'text/plain', 'method not allowed\n');

  const form = await readForm(req);
  if (form.get('cancel')) {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'AADSTS50058: The user cancelled the sign-in.',
    }, { mergeWithLastSubmission: false });
  }
  const who = (action === 'signup' ? form.get('email') : form.get('username'))?.trim() || '';
  const password = form.get('password') || '';
  const again = action === 'signup' ? signUpPage : signInPage;
  if (!who || !password) {
    return html(again(uid, base, { hint: who, client, error: 'Enter a user name and a password.' }));
  }
  if (password === 'wrong') {
    return html(again(uid, base, { hint: who, client, error: 'Your password is incorrect.' }));
  }
  const acct = upsertAccount(ctx.opt, who, action === 'signup' ? (form.get('displayName') || '').trim() : '');
  const result = {
    login: { accountId: acct.sub, amr: ['pwd'], remember: true },
  };
  if (prompt.name === 'create') result.create = { created: true };
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

async function main() {
  const opt = options();
  let ctx = null; // set once the port is known
  const server = createServer((req, res) => {
    if (!ctx) return send(res, 503, 'text/plain', 'starting\n');
    route(ctx, req, res).catch((err) => {
      process.stderr.write(`demo-op: ${err.stack || err}\n`);
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opt.port, opt.host, resolve);
  });
  const { port } = server.address();
  const hostPart = opt.host.includes(':') ? `[${opt.host}]` : opt.host;
  const origin = `http://${hostPart}:${port}`;
  const { provider, issuer, base } = await makeProvider(opt, origin);
  ctx = {
    opt, provider, issuer, base, handler: provider.callback(),
    authorityPath: `/${opt.tenantName}.onmicrosoft.com`,
  };

  if (opt.portFile) {
    writeFileSync(`${opt.portFile}.tmp`, `${port}\n`);
    renameSync(`${opt.portFile}.tmp`, opt.portFile);
  }
  process.stdout.write(`demo-op: listening on ${origin}\n`
    + `demo-op: authority ${origin}${ctx.authorityPath}\n`
    + `demo-op: issuer    ${issuer}\n`);

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const DISCOVERY = '/.well-known/openid-configuration';

async function route(ctx, req, res) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
  if (p === '/' ) {
    return send(res, 200, 'text/plain',
      `gatehouse demo OpenID Provider\nauthority: http://${req.headers.host}${ctx.authorityPath}\nissuer: ${ctx.issuer}\n`);
  }
  // Entra's discovery lives under {authority}/v2.0, for the tenant name
  // and for the tenant id; the document is the same (GUID issuer).
  if (p === `${ctx.authorityPath}/v2.0${DISCOVERY}` || p === `${ctx.base}/v2.0${DISCOVERY}`) {
    req.originalUrl = `${ctx.base}${DISCOVERY}${url.search}`;
    req.url = `${DISCOVERY}${url.search}`;
    return ctx.handler(req, res);
  }
  if (p.startsWith(`${ctx.base}/interaction/`)) return interaction(ctx, req, res, url);
  // The v1-style document (no /v2.0) is not served, as on ciamlogin.com.
  if (p.startsWith(`${ctx.base}/`) && !p.startsWith(`${ctx.base}/.well-known/`)) {
    req.originalUrl = req.url;
    req.url = req.url.slice(ctx.base.length);
    return ctx.handler(req, res);
  }
  return send(res, 404, 'application/json', JSON.stringify({
    error: 'invalid_tenant',
    error_description: `AADSTS90002: Tenant or path '${p}' not found.`,
  }));
}

main().catch((err) => {
  process.stderr.write(`demo-op: ${err.stack || err}\n`);
  process.exit(1);
});
