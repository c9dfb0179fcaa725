// SPDX-License-Identifier: ISC
//
// gatehouse's browser test: Debian's Chromium, headless, driven by
// playwright-core (which never downloads a browser here), walks the demo
// as a person would: the example app's public page offers "Sign in"; the
// demo OpenID Provider's real sign-in page; the app's greeting; the
// downstream API (Graph /me through the stand-in, with the access token
// gatehouse forwards); sign-out, which ends on gatehouse's signed-out
// page; "Sign in again" from there; and a new account signed up through
// the provider's create-account page.
//
//   node signin.mjs GATEWAY_URL USERNAME [--signup-email EMAIL]
//       [--signup-name "Display Name"] [--screenshots DIR]
//       [--chromium /usr/bin/chromium] [--timeout-ms 15000]
//       [--trust-spki BASE64]
//
// The demo stack (examples/demo.py, or tests/integration/test_browser.py)
// must be running with gatehouse at GATEWAY_URL in front of
// examples/upstream-app/app.py.  Exit status 0 when every step passed,
// 1 with "FAIL: ..." on the first failure, 2 on bad arguments.
// Screenshots of every major step go to DIR (default: a new temporary
// directory), whose path is printed.  --trust-spki makes Chromium trust
// the certificate whose public key has that SHA-256 (base64), as a test
// CA would be without installing it (an https GATEWAY_URL).

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

function usage(msg) {
  if (msg) process.stderr.write(`signin: ${msg}\n`);
  process.stderr.write('usage: node signin.mjs GATEWAY_URL USERNAME '
    + '[--signup-email EMAIL] [--signup-name NAME] [--screenshots DIR]\n'
    + '       [--chromium PATH] [--timeout-ms MS] [--trust-spki BASE64]\n');
  process.exit(2);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        'signup-email': { type: 'string' },
        'signup-name': { type: 'string', default: 'Grace Hopper' },
        screenshots: { type: 'string' },
        chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
        'timeout-ms': { type: 'string', default: '15000' },
        'trust-spki': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (e) {
    usage(e.message);
  }
  const { values: v, positionals: pos } = parsed;
  if (v.help) usage();
  if (pos.length !== 2) usage('GATEWAY_URL and USERNAME are required');
  let gw;
  try {
    gw = new URL(pos[0]);
  } catch (e) {
    usage(`bad GATEWAY_URL ${pos[0]}`);
  }
  if (gw.protocol !== 'http:' && gw.protocol !== 'https:') usage('GATEWAY_URL must be http(s)');
  const user = pos[1].trim();
  if (!/^[A-Za-z0-9._-]+(@[A-Za-z0-9.-]+)?$/.test(user)) usage('USERNAME must be [A-Za-z0-9._-]+, optionally @domain');
  const timeout = Number(v['timeout-ms']);
  if (!Number.isInteger(timeout) || timeout < 1000) usage('bad --timeout-ms');
  return {
    gw: gw.origin,
    user,
    signupEmail: v['signup-email'] || `new.${user.split('@')[0]}.${Date.now()}@example.com`,
    signupName: v['signup-name'],
    shots: v.screenshots,
    chromium: v.chromium,
    timeout,
    spki: v['trust-spki'],
  };
}

class Failure extends Error {}

function check(cond, msg) {
  if (!cond) throw new Failure(msg);
}

const opt = options();
const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(2);
const say = (msg) => process.stdout.write(`signin: [${secs()}s] ${msg}\n`);

const shotDir = opt.shots || mkdtempSync(join(tmpdir(), 'gatehouse-browser-'));
mkdirSync(shotDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'gatehouse-chromium-profile-'));
let shotNo = 0;
let step = 'launching Chromium';
let context = null;
let page = null;
const trail = []; // every main-frame navigation request, redirects included
const problems = []; // page errors and 5xx answers seen along the way

async function shot(name) {
  shotNo += 1;
  const file = join(shotDir, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  say(`screenshot ${file}`);
  return file;
}

// A screenshot straight from the DevTools protocol: page.screenshot()
// waits for the pending navigation, which a held request never finishes.
// cdp: a CDP session opened beforehand.
async function rawShot(cdp, name) {
  shotNo += 1;
  const file = join(shotDir, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  let timer;
  try {
    const { data } = await Promise.race([
      cdp.send('Page.captureScreenshot', { format: 'png' }),
      new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error('screenshot timed out')), 3000);
      }),
    ]);
    writeFileSync(file, Buffer.from(data, 'base64'));
  } finally {
    clearTimeout(timer);
  }
  say(`screenshot ${file}`);
  return file;
}

function origin(u) {
  try {
    return new URL(u).origin;
  } catch (e) {
    return '';
  }
}

// The URL with its query and fragment cut off: they may carry codes,
// states and ID token hints, which have no place in a log.
function bare(u) {
  try {
    const x = new URL(u);
    if (x.origin === 'null') return `${x.protocol}${x.pathname}`;
    return `${x.origin}${x.pathname}${x.search ? '?…' : ''}`;
  } catch (e) {
    return String(u);
  }
}

async function h1() {
  return ((await page.locator('h1').first().textContent({ timeout: opt.timeout })) || '').trim();
}

// Wait until the page is the demo OP's sign-in (or sign-up) form.
async function expectOpForm(kind) {
  const field = kind === 'signup' ? '#email' : '#username';
  const title = kind === 'signup' ? 'Create account' : 'Sign in';
  await page.waitForSelector(field, { timeout: opt.timeout });
  check(origin(page.url()) !== opt.gw,
    `expected the OpenID Provider's ${title} page, but the page is on the gateway: ${bare(page.url())}`);
  check(/\/interaction\/[A-Za-z0-9_-]+/.test(new URL(page.url()).pathname),
    `the ${title} page is not an OP interaction URL: ${bare(page.url())}`);
  const head = await h1();
  check(head === title, `the OP page's heading is "${head}", expected "${title}"`);
  return origin(page.url());
}

// Wait for gatehouse's signed-out page (the end of a sign-out).
async function expectSignedOutPage() {
  await page.waitForURL((u) => u.origin === opt.gw && u.pathname === '/.auth/logout/complete',
    { timeout: opt.timeout });
  const head = await h1();
  check(/signed out/i.test(head), `the signed-out page's heading is "${head}"`);
}

// Wait for the example app's greeting on the gateway's origin; returns
// the identity table (header -> value) shown on the page.
async function expectGreeting(who) {
  await page.waitForURL((u) => u.origin === opt.gw && u.pathname === '/', { timeout: opt.timeout });
  const head = await h1();
  check(head.startsWith('Hello, '),
    `expected the app's "Hello, ..." greeting at ${bare(page.url())}, got heading "${head}"`);
  check(head.toLowerCase().includes(who.toLowerCase()),
    `the greeting "${head}" does not name the user ${who}`);
  const rows = await page.locator('main section').first().locator('tr').evaluateAll((trs) => trs
    .map((tr) => [tr.querySelector('th')?.textContent?.trim(), tr.querySelector('td')?.textContent?.trim()]));
  const ident = Object.fromEntries(rows.filter(([k]) => k));
  const claims = await page.locator('main section').nth(1).locator('tr').evaluateAll((trs) => trs
    .map((tr) => [tr.querySelector('th')?.textContent?.trim(), tr.querySelector('td')?.textContent?.trim()]));
  return { head, ident, claims: claims.filter(([k]) => k) };
}

// Click "Call a downstream API" and check Graph's answer; returns the JSON.
async function callApi(expectId, expectName) {
  await page.locator('main a[href="/call-api"]').click({ timeout: opt.timeout });
  await page.waitForURL((u) => u.origin === opt.gw && u.pathname === '/call-api', { timeout: opt.timeout });
  const head = await h1();
  if (head !== 'Microsoft Graph /me') {
    const detail = (await page.locator('main').textContent()).replace(/\s+/g, ' ').trim();
    throw new Failure(`/call-api did not show Graph's answer (heading "${head}"): ${detail.slice(0, 400)}`);
  }
  const muted = (await page.locator('main p.muted').first().textContent()).trim();
  check(/\(HTTP 200\)/.test(muted), `Graph did not answer 200: "${muted}"`);
  let me;
  try {
    me = JSON.parse(await page.locator('main pre').textContent());
  } catch (e) {
    throw new Failure(`the /call-api page's <pre> is not JSON: ${e.message}`);
  }
  check(me && typeof me === 'object', 'Graph /me answered no object');
  check(typeof me.displayName === 'string' && me.displayName.length > 0,
    `Graph /me has no displayName: ${JSON.stringify(me)}`);
  check(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(me.id || ''),
    `Graph /me id is not an object id: ${JSON.stringify(me)}`);
  if (expectId) {
    check(me.id === expectId,
      `Graph /me id ${me.id} is not the signed-in user's X-MS-CLIENT-PRINCIPAL-ID ${expectId}`);
  }
  if (expectName) {
    check(me.displayName.toLowerCase().includes(expectName.toLowerCase()),
      `Graph /me displayName "${me.displayName}" does not name ${expectName}`);
  }
  return me;
}

// Status of a same-origin fetch made by the page (its cookies included).
async function pageFetchStatus(path) {
  return page.evaluate(async (p) => (await fetch(p, { redirect: 'manual', cache: 'no-store' })).status, path);
}

async function gatewayCookies() {
  return (await context.cookies(opt.gw)).filter((c) => c.name === 'gatehouse' || c.name.startsWith('gatehouse_'));
}

// Wait until the navigation requests made since trail[from] satisfy pred.
async function waitTrail(from, pred, what) {
  const end = Date.now() + opt.timeout;
  while (!pred(trail.slice(from))) {
    if (Date.now() > end) throw new Failure(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Click "Sign out" and follow it to the end; returns the URLs passed.
async function signOut(opOrigin) {
  const from = trail.length;
  // Photograph the OP's "Signing out" page as its form submits itself
  // (the confirmation request is held until the picture is taken).
  let confirmShot = null;
  const cdp = await context.newCDPSession(page);
  const confirmUrl = (u) => origin(u.href) === opOrigin && u.pathname.endsWith('/oauth2/v2.0/logout/confirm');
  await page.route(confirmUrl, async (route) => {
    confirmShot = await rawShot(cdp, 'op-signing-out').catch((e) => `none (${e.message})`);
    await route.continue();
  });
  await page.locator('header a[href="/.auth/logout"]').click({ timeout: opt.timeout });
  // gatehouse /.auth/logout -> the OP's end_session endpoint (its
  // "Signing out" form submits itself) -> gatehouse's signed-out page.
  const isEndSession = (u) => origin(u) === opOrigin && new URL(u).pathname.endsWith('/oauth2/v2.0/logout');
  await waitTrail(from, (t) => {
    const i = t.findIndex(isEndSession);
    return i >= 0 && t.slice(i + 1).some((u) => origin(u) === opt.gw);
  }, 'the OP\'s end_session endpoint and then the gateway');
  await page.waitForLoadState('load', { timeout: opt.timeout });
  await page.waitForLoadState('networkidle', { timeout: opt.timeout }).catch(() => {});
  await page.unroute(confirmUrl);
  await cdp.detach().catch(() => {});
  check(confirmShot !== null, 'the OP\'s "Signing out" form was never submitted to /logout/confirm');
  return trail.slice(from);
}

async function run() {
  say(`Chromium ${opt.chromium}, fresh profile ${profile}`);
  context = await chromium.launchPersistentContext(profile, {
    executablePath: opt.chromium,
    headless: true,
    args: opt.spki
      ? [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${opt.spki}`]
      : CHROMIUM_ARGS,
    viewport: { width: 1100, height: 800 },
    timeout: opt.timeout,
  });
  context.setDefaultTimeout(opt.timeout);
  context.setDefaultNavigationTimeout(opt.timeout);
  page = context.pages()[0] || await context.newPage();
  say(`Chromium ${context.browser()?.version() || '(persistent context)'} started`);
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) trail.push(r.url());
  });
  page.on('pageerror', (e) => problems.push(`page error at ${bare(page.url())}: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`${r.status()} from ${bare(r.url())}`);
  });

  // 1. The app's home page is public: it offers "Sign in", which leads to
  // the OP's sign-in page.
  step = `open ${opt.gw}/ (expecting the app's public page)`;
  say(step);
  await page.goto(`${opt.gw}/`, { waitUntil: 'load' });
  const pub = await h1();
  check(!pub.startsWith('Hello, '), `an anonymous visitor was greeted: "${pub}"`);
  await shot('app-public-page');
  step = 'click "Sign in" on the public page (expecting the OP\'s sign-in page)';
  say(step);
  await page.locator('main a[href^="/.auth/login"]').first().click({ timeout: opt.timeout });
  const opOrigin = await expectOpForm('signin');
  check(trail.some((u) => origin(u) === opOrigin && new URL(u).pathname.endsWith('/oauth2/v2.0/authorize')),
    'the sign-in page was not reached through the OP\'s authorize endpoint');
  check((await gatewayCookies()).some((c) => c.name.startsWith('gatehouse_flow')),
    'gatehouse set no gatehouse_flow_* cookie before sending the browser to the OP');
  say(`on the OP's sign-in page ${bare(page.url())}`);
  await shot('op-sign-in');

  // 2. Sign in with a name and any password.
  step = `sign in as ${opt.user}`;
  say(step);
  await page.fill('#username', opt.user);
  await page.fill('#password', 'correct horse battery staple');
  await shot('op-sign-in-filled');
  await page.click('#signin');
  const g = await expectGreeting(opt.user.split('@')[0]);
  const oid = g.ident['X-MS-CLIENT-PRINCIPAL-ID'];
  check(/^[0-9a-f-]{36}$/.test(oid || ''),
    `the app got no X-MS-CLIENT-PRINCIPAL-ID (oid): ${JSON.stringify(g.ident)}`);
  check(g.claims.length > 0, 'the app shows no claims from X-MS-CLIENT-PRINCIPAL');
  check(!trail.some((u) => origin(u) === opt.gw && new URL(u).pathname === '/.auth/callback'
    && new URL(u).searchParams.has('error')), 'the callback carried an error');
  check((await gatewayCookies()).some((c) => c.name === 'gatehouse' && c.httpOnly),
    'no HttpOnly gatehouse session cookie after sign-in');
  check(await pageFetchStatus('/.auth/me') === 200, '/.auth/me is not 200 after sign-in');
  say(`greeted: "${g.head}" (oid ${oid})`);
  await shot('app-greeting');

  // 3. The downstream API call with the forwarded access token.
  step = 'call the downstream API (Graph /me through the stand-in)';
  say(step);
  const me = await callApi(oid, opt.user.split('@')[0].split(/[._-]/)[0]);
  say(`Graph /me answered 200: displayName "${me.displayName}", id ${me.id}, `
    + `userPrincipalName ${me.userPrincipalName}`);
  await shot('app-graph-me');

  // 4. Sign out: gatehouse, then the OP, then gatehouse's signed-out page.
  step = 'sign out';
  say(step);
  const out = await signOut(opOrigin);
  say(`sign-out went through: ${out.map(bare).join(' -> ')}`);
  check(origin(out[0]) === opt.gw && new URL(out[0]).pathname === '/.auth/logout',
    'sign-out did not start at the gateway\'s /.auth/logout');
  const endSession = out.find((u) => origin(u) === opOrigin && new URL(u).pathname.endsWith('/oauth2/v2.0/logout'));
  check(new URL(endSession).searchParams.has('id_token_hint'),
    'gatehouse sent no id_token_hint to the OP\'s end_session endpoint');
  check(new URL(endSession).searchParams.get('post_logout_redirect_uri')
    === `${opt.gw}/.auth/logout/complete`,
    'gatehouse did not send its signed-out page as the post_logout_redirect_uri');
  await expectSignedOutPage();
  check(!(await gatewayCookies()).some((c) => c.name === 'gatehouse' && c.value !== ''),
    'the gatehouse session cookie is still set after sign-out');
  check(await pageFetchStatus('/.auth/me') === 401, '/.auth/me is not 401 after sign-out');
  say('signed out: gatehouse\'s signed-out page');
  await shot('signed-out-page');

  // 5. "Sign in again" from the signed-out page: the OP asks again (its
  // session ended too), and the user lands back in the app.
  step = 'click "Sign in again" on the signed-out page';
  say(step);
  await page.locator('a', { hasText: 'Sign in again' }).first().click({ timeout: opt.timeout });
  await expectOpForm('signin');
  await shot('sign-in-again');
  await page.fill('#username', opt.user);
  await page.fill('#password', 'correct horse battery staple');
  await page.click('#signin');
  const again = await expectGreeting(opt.user.split('@')[0]);
  check(again.ident['X-MS-CLIENT-PRINCIPAL-ID'] === oid,
    'signed in again as the same user, but the oid changed');
  say(`greeted again: "${again.head}"`);
  await shot('app-greeting-again');
  step = 'sign out again';
  say(step);
  await signOut(opOrigin);
  await expectSignedOutPage();

  // 6. Sign up a new account through the OP's create-account page.
  step = `sign up ${opt.signupEmail} via /.auth/login?prompt=create`;
  say(step);
  const signupFrom = trail.length;
  await page.goto(`${opt.gw}/.auth/login?prompt=create&post_login_redirect_uri=/`, { waitUntil: 'load' });
  await expectOpForm('signup');
  check(trail.slice(signupFrom).some((u) => new URL(u).searchParams.get('prompt') === 'create'),
    'the authorize request did not carry prompt=create');
  await page.fill('#email', opt.signupEmail);
  await page.fill('#displayName', opt.signupName);
  await page.fill('#password', 'another secret');
  await shot('op-sign-up-filled');
  await page.click('#signup');
  const g2 = await expectGreeting(opt.signupEmail.split('@')[0]);
  const oid2 = g2.ident['X-MS-CLIENT-PRINCIPAL-ID'];
  check(oid2 && oid2 !== oid, `the new account's oid ${oid2} is not new (first user ${oid})`);
  check(g2.claims.some(([, v]) => v === opt.signupName),
    `the new account's claims do not carry the display name "${opt.signupName}"`);
  say(`greeted after sign-up: "${g2.head}" (oid ${oid2})`);
  await shot('app-greeting-after-sign-up');
  const me2 = await callApi(oid2, opt.signupName);
  say(`Graph /me for the new account: displayName "${me2.displayName}"`);
  await shot('app-graph-me-after-sign-up');

  check(problems.length === 0, `errors along the way:\n  ${problems.join('\n  ')}`);
}

let rc = 0;
try {
  await run();
  say(`PASS: public page, signed in, greeted, called Graph, signed out to the signed-out page, signed in again, signed up; screenshots in ${shotDir}`);
} catch (e) {
  rc = 1;
  const what = e instanceof Failure ? e.message : (e.stack || String(e)).split('\n').slice(0, 6).join('\n');
  process.stderr.write(`signin: FAIL while trying to ${step}:\n  ${what}\n`);
  if (page) {
    process.stderr.write(`signin: the page is at ${bare(page.url())}\n`);
    try {
      const text = (await page.locator('body').textContent({ timeout: 2000 })) || '';
      process.stderr.write(`signin: it says: ${text.replace(/\s+/g, ' ').trim().slice(0, 600)}\n`);
      await shot('failure');
    } catch (e2) {
      // the page is gone; nothing more to show
    }
  }
  if (trail.length) process.stderr.write(`signin: navigations: ${trail.map(bare).join(' -> ')}\n`);
  if (problems.length) process.stderr.write(`signin: also seen: ${problems.join('; ')}\n`);
  process.stderr.write(`signin: screenshots in ${shotDir}\n`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(rc);
