// The dashboard in headless Chromium against a running vsd with traffic: it loads (assets from
// vsd only, no console errors, charts drawn), its numbers equal `vsadm -L -n --rate` and the
// estimator and move under traffic, the connection table is searchable, a weight set on the page
// reaches `vsadm -L -n` (and drain/undrain work), and without the token the page is read-only.
// A screenshot is kept in test-artifacts/dashboard.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { ControlClient } from '../../src/control/client.js';
import type { VsdExtension } from '../../src/control/daemon.js';
import { WebExtension } from '../../src/web/extension.js';
import { ipvsadm } from '../metrics/golden-table.js';
import { playTcp, pump, type RunningVsd, startVsd, TABLE_YAML } from '../metrics/vsd-harness.js';
import { type Browser, launch, NO_CHROMIUM } from './browser.js';

// The page's globals, for the functions that run in the browser (the project compiles without DOM types).
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(sel: string): { textContent: string | null } | null;
  querySelectorAll(sel: string): { length: number };
};
declare const window: { scrollTo(x: number, y: number): void };

const TOKEN = 'dashboard-test-token-0123456789';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

const healthFake: VsdExtension = {
  name: 'health-fake',
  async start() {},
  async stop() {},
  annotateDest: (_k, d) => (d.addr === '10.0.1.1' ? { health: 'up' } : d.addr === '10.0.1.2' ? { health: { state: 'failing', up: false }, weightReason: 'inhibit_on_failure' } : undefined),
};

/** `vsadm -L -n --rate` real-server lines: "addr:port" → [cps, inpps, outpps, inbps, outbps]. */
function rateLines(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of text.matchAll(/^ {2}-> (\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/gm)) out.set(m[1]!, m.slice(2, 7).map(Number));
  return out;
}

describe('dashboard in headless Chromium', { skip: NO_CHROMIUM, timeout: 120_000 }, () => {
  let r: RunningVsd;
  let web: WebExtension;
  let browser: Browser;
  let page: Page;
  let client: ControlClient;
  const problems: string[] = [];
  let base = '';

  async function updates(): Promise<number> {
    return Number((await page.getAttribute('body', 'data-updates')) ?? 0);
  }

  /** Wait for `n` more completed polls of the page. */
  async function polls(n: number): Promise<void> {
    const start = await updates();
    await page.waitForFunction((k) => Number(document.body.dataset.updates ?? 0) >= k, start + n, { timeout: 15_000 });
  }

  async function cell(dest: string, cls: string): Promise<string> {
    return (await page.textContent(`section.svc[data-key="tcp:10.0.0.1:80"] tr[data-dest="${dest}"] td.${cls}`))?.trim() ?? '';
  }

  before(async () => {
    web = new WebExtension({ listen: '127.0.0.1:0', token: TOKEN });
    r = await startVsd({ config: TABLE_YAML, extensions: [healthFake, web] });
    client = await ControlClient.connect(r.socketPath);
    const open = playTcp(r, 5, 3);
    pump(open.slice(0, 5), 4);
    r.estimate(3);
    browser = await launch();
    page = await browser.context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // the page may talk to vsd only
    base = `http://127.0.0.1:${web.port}`;
    await page.route('**/*', (route) => {
      if (route.request().url().startsWith(base)) return route.continue();
      problems.push(`external request ${route.request().url()}`);
      return route.abort();
    });
    await page.goto(`${base}/#token=${TOKEN}`);
    await page.waitForSelector('section.svc[data-key="tcp:10.0.0.1:80"] tr[data-dest="10.0.1.1:8080"]', { timeout: 15_000 });
    await polls(1);
  });

  after(async () => {
    try {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page?.evaluate(() => window.scrollTo(0, 0));
      await page?.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });
    } finally {
      client?.close();
      await browser?.close();
      await r?.stop();
    }
  });

  test('loads: every service and real server, charts drawn, nothing but vsd asked, no errors', async () => {
    assert.equal(await page.title(), 'tsvs director');
    assert.deepEqual(await page.$$eval('section.svc', (els) => els.map((e) => (e as unknown as { dataset: { key?: string } }).dataset.key)), ['tcp:10.0.0.1:80', 'udp:[2001:db8::53]:53', 'fwm4:7']);
    assert.equal(await page.$$eval('section.svc tr[data-dest]', (els) => els.length), 4);
    assert.equal(await page.$$eval('.uplot', (els) => els.length), 4, 'a chart for the totals and one per service');
    assert.match((await page.textContent('section.svc[data-key="fwm4:7"] .svc-title')) ?? '', /^FWM {2}7 rr persistent 60$/);
    assert.match((await page.textContent('#status')) ?? '', /^live/);
    assert.equal((await page.textContent('#auth'))?.trim(), 'changes allowed');
    // the token went from the URL into this tab's storage and out of the address bar
    assert.equal(new URL(page.url()).hash, '');
    for (const s of r.vsd.director.serviceInfos()) {
      for (const d of s.dests) {
        if (s.addr !== '10.0.0.1') continue;
        const dest = `${d.addr}:${d.port}`;
        assert.equal(await cell(dest, 'weight'), String(d.weight));
        assert.equal(await cell(dest, 'active'), String(d.activeConns));
        assert.equal(await cell(dest, 'inactive'), String(d.inactConns));
      }
    }
    assert.equal(await cell('10.0.1.1:8080', 'health'), 'up');
    assert.equal(await cell('10.0.1.2:8080', 'health'), 'failing');
    assert.deepEqual(problems, []);
  });

  test('rates on the page = vsadm -L -n --rate = the estimator', async () => {
    await polls(1);
    const vsadmOut = rateLines(await ipvsadm(client, '-L -n --rate'));
    const svc = r.vsd.director.serviceInfos().find((s) => s.addr === '10.0.0.1')!;
    for (const d of svc.dests) {
      const dest = `${d.addr}:${d.port}`;
      const est = [d.rates.cps, d.rates.inpps, d.rates.outpps, d.rates.inbps, d.rates.outbps];
      const shown = await Promise.all(['cps', 'inpps', 'outpps', 'inbps', 'outbps'].map(async (c) => Number(await cell(dest, c))));
      assert.deepEqual(vsadmOut.get(dest), est, `vsadm ${dest}`);
      assert.deepEqual(shown, est, `page ${dest}`);
    }
    assert.ok(svc.rates.inpps > 0, 'traffic made the rates non-zero');
    const tr = r.vsd.director.totalStats.rates();
    assert.equal(await page.textContent('#t-inbps'), String(tr.inbps));
    assert.equal(await page.textContent('#t-cps'), String(tr.cps));
  });

  test('live numbers move under traffic', async () => {
    const before = Number(await page.textContent('#t-inpps'));
    const beforeConns = Number(await page.textContent('#t-conns'));
    const open = playTcp(r, 20, 0, 43000);
    pump(open, 10);
    r.estimate(1);
    await page.waitForFunction((b) => Number(document.querySelector('#t-inpps')?.textContent) > b, before, { timeout: 15_000 });
    await polls(1);
    assert.equal(Number(await page.textContent('#t-inpps')), r.vsd.director.totalStats.rates().inpps);
    assert.equal(Number(await page.textContent('#t-conns')), beforeConns + 20);
    const active = r.vsd.director.serviceInfos()[0]!.dests.reduce((n, d) => n + d.activeConns, 0);
    const shown = Number(await cell('10.0.1.1:8080', 'active')) + Number(await cell('10.0.1.2:8080', 'active'));
    assert.equal(shown, active);
  });

  test('the connection table is searchable', async () => {
    await page.fill('#conn-q', '192.0.2.10:40001 ');
    await page.click('#conn-form button');
    await page.waitForFunction(() => document.querySelectorAll('#conn-table tbody tr').length === 1, undefined, { timeout: 10_000 });
    const row = await page.$$eval('#conn-table tbody tr td', (tds) => tds.map((t) => t.textContent));
    assert.equal(row[0], 'TCP');
    assert.equal(row[2], 'ESTABLISHED');
    assert.equal(row[3], '192.0.2.10:40001');
    assert.equal(row[4], '10.0.0.1:80');
    await page.fill('#conn-q', 'time_wait');
    await page.click('#conn-form button');
    await page.waitForFunction(() => document.querySelectorAll('#conn-table tbody tr').length === 3, undefined, { timeout: 10_000 });
    assert.match((await page.textContent('#conn-info')) ?? '', /^3 shown · \d+ entries in the table$/);
  });

  test('a weight set on the page reaches vsadm -L -n; drain and undrain', async () => {
    const row = 'section.svc[data-key="tcp:10.0.0.1:80"] tr[data-dest="10.0.1.2:8080"]';
    await page.fill(`${row} input.w`, '7');
    await page.click(`${row} button.set`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} td.weight`)?.textContent === '7', row, { timeout: 10_000 });
    assert.match(await ipvsadm(client, '-L -n'), /^ {2}-> 10\.0\.1\.2:8080 +Masq {4}7 {6}/m);
    await page.click(`${row} button.drain`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} td.weight`)?.textContent === '0', row, { timeout: 10_000 });
    assert.match(await ipvsadm(client, '-L -n'), /^ {2}-> 10\.0\.1\.2:8080 +Masq {4}0 {6}/m);
    assert.equal((await page.textContent(`${row} button.drain`))?.trim(), 'Undrain');
    assert.match((await page.textContent(`${row} td.health`)) ?? '', /drained/);
    await page.click(`${row} button.drain`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} td.weight`)?.textContent === '7', row, { timeout: 10_000 });
    assert.match(await ipvsadm(client, '-L -n'), /^ {2}-> 10\.0\.1\.2:8080 +Masq {4}7 {6}/m);
    // a weight out of range is refused on the page, and nothing changes
    await page.fill(`${row} input.w`, '-3');
    await page.click(`${row} button.set`);
    await page.waitForSelector('#toast .msg.error', { timeout: 10_000 });
    assert.match(await ipvsadm(client, '-L -n'), /^ {2}-> 10\.0\.1\.2:8080 +Masq {4}7 {6}/m);
    await page.fill(`${row} input.w`, '1');
    await page.click(`${row} button.set`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} td.weight`)?.textContent === '1', row, { timeout: 10_000 });
  });

  test('without the token the page is read-only, and the API refuses changes', async () => {
    const p2 = await browser.context.newPage();
    try {
      // a fresh tab has no token in its storage
      await p2.goto(`${base}/`);
      await p2.waitForSelector('section.svc tr[data-dest="10.0.1.1:8080"]', { timeout: 15_000 });
      await p2.waitForFunction(() => Number(document.body.dataset.updates ?? 0) >= 1, undefined, { timeout: 15_000 });
      assert.equal((await p2.textContent('#auth'))?.trim(), 'read-only');
      assert.equal(await p2.isDisabled('tr[data-dest="10.0.1.1:8080"] button.set'), true);
      const status = await p2.evaluate(async () => {
        const res = await fetch('/api/v1/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 1, op: 'flush', args: [] }) });
        return res.status;
      });
      assert.equal(status, 401);
      assert.equal(r.vsd.director.table.size, 3);
    } finally {
      await p2.close();
    }
    assert.deepEqual(problems, []);
  });
});
