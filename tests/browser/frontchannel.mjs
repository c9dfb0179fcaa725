// SPDX-License-Identifier: ISC
//
// gatehouse's front-channel logout browser test: Debian's Chromium,
// headless, driven by playwright-core, opens the tests' OpenID Provider's
// signed-out page, which loads gatehouse's front-channel logout URL in an
// iframe (another origin: the provider's port).  Passes when the iframe
// shows gatehouse's "Signed out" page: the browser let the provider frame
// it (Content-Security-Policy frame-ancestors) and the request reached
// gatehouse.
//
//   node frontchannel.mjs OP_SIGNED_OUT_URL [--chromium /usr/bin/chromium]
//
// Exit status 0 on success, 1 with "FAIL: ..." otherwise, 2 on bad
// arguments.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: v, positionals: pos } = parseArgs({
  allowPositionals: true,
  options: { chromium: { type: 'string', default: '/usr/bin/chromium' } },
});
if (pos.length !== 1) {
  process.stderr.write('usage: node frontchannel.mjs OP_SIGNED_OUT_URL\n');
  process.exit(2);
}
const [url] = pos;
const profile = mkdtempSync(join(tmpdir(), 'gh-fcl-profile-'));
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
  const page = context.pages()[0] || await context.newPage();
  const resp = await page.goto(url, { timeout: 15000, waitUntil: 'load' });
  if (resp.status() !== 200) throw new Error(`page answered ${resp.status()}`);
  const el = await page.waitForSelector('#frontchannel', { timeout: 15000 });
  const frame = await el.contentFrame();
  if (frame === null) throw new Error('no iframe');
  // A frame the browser refused to show (frame-ancestors) is an error
  // page of its own, without gatehouse's text.
  await frame.waitForLoadState('load', { timeout: 15000 });
  const text = await frame.evaluate(() => document.body ? document.body.innerText : '');
  if (!text.includes('Signed out')) throw new Error(`the iframe shows: ${text.slice(0, 200)}`);
  process.stdout.write('frontchannel: ok\n');
  status = 0;
} catch (e) {
  process.stdout.write(`FAIL: ${e.message}\n`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
