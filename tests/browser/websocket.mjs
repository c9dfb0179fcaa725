// SPDX-License-Identifier: ISC
//
// gatehouse's WebSocket browser test: Debian's Chromium, headless, driven
// by playwright-core, holding a signed-in session cookie, opens a page
// through gatehouse whose script opens a WebSocket to the same origin and
// exchanges a text and a binary message with the echo upstream
// (tests/integration/ws_echo.py).
//
//   node websocket.mjs GATEWAY_URL COOKIE_NAME COOKIE_VALUE
//       [--chromium /usr/bin/chromium]
//
// Exit status 0 when the page reports "ok", 1 with "FAIL: ..." otherwise,
// 2 on bad arguments.  The cookie value is never printed.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: v, positionals: pos } = parseArgs({
  allowPositionals: true,
  options: { chromium: { type: 'string', default: '/usr/bin/chromium' } },
});
if (pos.length !== 3) {
  process.stderr.write('usage: node websocket.mjs GATEWAY_URL COOKIE_NAME COOKIE_VALUE\n');
  process.exit(2);
}
const [gw, name, value] = pos;
const profile = mkdtempSync(join(tmpdir(), 'gh-ws-profile-'));
let context;
let status = 1;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: v.chromium,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
  await context.addCookies([{ name, value, url: gw }]);
  const page = context.pages()[0] || await context.newPage();
  const resp = await page.goto(`${gw}/page.html`, { timeout: 15000 });
  if (resp.status() !== 200) throw new Error(`page answered ${resp.status()}`);
  await page.waitForFunction(
    () => document.getElementById('result').textContent !== 'pending',
    null, { timeout: 15000 });
  const result = await page.textContent('#result');
  if (result !== 'ok') throw new Error(`the page says: ${result}`);
  process.stdout.write('websocket: ok\n');
  status = 0;
} catch (e) {
  process.stdout.write(`FAIL: ${e.message}\n`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
