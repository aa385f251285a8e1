// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// `dnslb up` on 127.0.32.x: the token from the printed URL, the server table, block/unblock, the
// quorum refusal and its force, the bindings chart's data, and the banner once the system stops.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import type { PoolStatus, ServerEntry } from '../../src/cli/commands/admin-client.ts';
import { eventually } from '../helpers/eventually.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';

const NET = '127.0.32';
const FRONTENDS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
// Without the background-networking flags Chromium reaches for the (closed) network at start.
const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// page.evaluate takes expressions as text: this project type-checks without the DOM library.
// Conditions that hold come back at once; these bound a loaded 2-core machine, they measure nothing.
const WAIT = { timeoutMs: 30_000, intervalMs: 50 };

describe('dashboard in a browser', () => {
  let system: UpSystem | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let dashboardUrl = '';
  const problems: string[] = [];

  const row = (server: string) => page.locator(`#servers-body tr[data-server="${server}"]`);
  const cell = async (server: string, field: string) => (await row(server).locator(`td[data-field="${field}"]`).textContent({ timeout: WAIT.timeoutMs }))?.trim();
  const click = (server: string, action: string) => row(server).locator(`button[data-action="${action}"]`).click({ timeout: WAIT.timeoutMs });
  const message = async () => (await page.locator('#message-text').textContent())?.trim() ?? '';
  const apiStatus = async (): Promise<PoolStatus> => {
    const result = await system!.cli('pool', 'status', '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PoolStatus;
  };
  const apiEntry = async (server: string): Promise<ServerEntry> => (await apiStatus()).servers.find((entry) => entry.server === server)!;
  const watch = (target: Page) => {
    // A script error or a CSP violation (an inline script, a blocked file) would make the page lie quietly.
    target.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    target.on('console', (entry: ConsoleMessage) => {
      if (/Content Security Policy|Refused to/i.test(entry.text())) problems.push(`console: ${entry.text()}`);
    });
  };

  before(async () => {
    // --no-tls: the dashboard does not care how SIP is carried, and seven certificates cost seconds.
    [system, browser] = await Promise.all([startUp(NET, { args: ['--no-tls'] }), chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS })]);
    const printed = /^dashboard (http:\/\/\S+\/dashboard#token=\S+)$/m.exec(system.process.output());
    assert.ok(printed, `dnslb up prints the dashboard URL with the token:\n${system.process.output()}`);
    dashboardUrl = printed[1]!;
    page = await browser.newPage();
    watch(page);
    await page.goto(dashboardUrl);
  });
  after(async () => {
    await browser?.close();
    await system?.stop();
  });

  test('the token moves from the URL into the tab; the table lists fe1–fe3 active and available', async () => {
    await eventually(async () => {
      for (const server of FRONTENDS) {
        assert.equal(await cell(server, 'state'), 'active', server);
        assert.equal(await cell(server, 'available'), 'yes', server);
      }
    }, WAIT);
    assert.ok(!page.url().includes('token'), `the fragment is gone from the address bar: ${page.url()}`);
    assert.equal(await page.evaluate('sessionStorage.getItem("dnslb.adminToken")'), decodeURIComponent(dashboardUrl.split('#token=')[1]!));
    assert.equal(await page.locator('#topology-version').textContent(), '1');
    assert.match((await page.locator('#store-revision').textContent()) ?? '', /^\d+$/);
    assert.equal(await cell('fe1.contoso.com', 'pool'), 'pool01.contoso.com');
    assert.match((await cell('fe1.contoso.com', 'pid')) ?? '', /^\d+$/);
    assert.equal(Number(await cell('fe1.contoso.com', 'pid')), (await apiEntry('fe1.contoso.com')).process?.pid);
  });

  test('block fe3 from the page: the row shows blocked and GET /status agrees', async () => {
    await click('fe3.contoso.com', 'block');
    await eventually(async () => {
      assert.equal(await cell('fe3.contoso.com', 'state'), 'blocked');
      assert.equal(await cell('fe3.contoso.com', 'admin'), 'blocked');
    }, WAIT);
    const fe3 = await apiEntry('fe3.contoso.com');
    assert.equal(fe3.adminState?.state, 'blocked');
    assert.equal(fe3.adminState?.by, 'dashboard');
    assert.equal(await row('fe3.contoso.com').locator('button[data-action="unblock"]').isEnabled(), true);
  });

  test('drain fe2 with fe3 blocked: the quorum refusal is shown, fe2 stays active; force drains it, resume brings it back', async () => {
    await click('fe2.contoso.com', 'drain');
    await eventually(async () => assert.match(await message(), /^ADMIN_QUORUM: refused: drain fe2\.contoso\.com: only 1 of 3 servers would stay available, below the quorum of 2/), WAIT);
    assert.equal((await apiEntry('fe2.contoso.com')).adminState, null, 'nothing changed');
    assert.equal(await cell('fe2.contoso.com', 'admin'), 'active');
    assert.equal(await cell('fe2.contoso.com', 'state'), 'active');
    const force = page.locator('#force');
    assert.equal(await force.textContent(), 'Force drain of fe2.contoso.com anyway');
    await force.click({ timeout: WAIT.timeoutMs });
    await eventually(async () => assert.equal(await cell('fe2.contoso.com', 'admin'), 'draining'), WAIT);
    assert.equal((await apiEntry('fe2.contoso.com')).adminState?.state, 'draining');
    await click('fe2.contoso.com', 'resume');
    await eventually(async () => assert.equal(await cell('fe2.contoso.com', 'admin'), 'active'), WAIT);
  });

  test('unblock fe3', async () => {
    await click('fe3.contoso.com', 'unblock');
    await eventually(async () => assert.equal(await cell('fe3.contoso.com', 'state'), 'active'), WAIT);
    assert.equal((await apiEntry('fe3.contoso.com')).adminState?.state, 'active');
  });

  test('the chart draws bindings per server from the polls', async () => {
    assert.ok((await page.locator('#chart canvas').count()) >= 1, 'a uPlot canvas');
    const data = await eventually(async () => {
      const data = (await page.evaluate('window.dnslbDashboard.chartData()')) as (number | null)[][] | null;
      assert.ok(data && data[0]!.length >= 2, `at least two polls: ${JSON.stringify(data)}`);
      return data;
    }, WAIT);
    const names = (await page.evaluate('window.dnslbDashboard.seriesNames()')) as string[];
    for (const server of FRONTENDS) assert.ok(names.includes(server), server);
    const [times, ...series] = data;
    assert.ok(times!.every((time, index) => index === 0 || time! > times![index - 1]!), 'time goes forward');
    for (const values of series) assert.equal(values.length, times!.length);
    // No client signed in: every server that answered has 0 bindings (a number, not a gap).
    const fe1 = series[names.indexOf('fe1.contoso.com')]!;
    assert.ok(fe1.filter((value) => value === 0).length >= 2, JSON.stringify(fe1));
  });

  test('without a token the page asks for one; a wrong one is refused, the right one opens the table', async () => {
    const context = await browser!.newContext();
    try {
      const fresh = await context.newPage();
      watch(fresh);
      await fresh.goto(dashboardUrl.split('#')[0]!);
      await fresh.locator('#login').waitFor({ state: 'visible', timeout: WAIT.timeoutMs });
      assert.equal(await fresh.locator('#main').isVisible(), false);
      await fresh.locator('#token-input').fill('not-the-token');
      await fresh.locator('#login button[type="submit"]').click();
      await eventually(async () => assert.match((await fresh.locator('#login-why').textContent()) ?? '', /refused this token/), WAIT);
      await fresh.locator('#token-input').fill(decodeURIComponent(dashboardUrl.split('#token=')[1]!));
      await fresh.locator('#login button[type="submit"]').click();
      await fresh.locator('#servers-body tr[data-server="fe1.contoso.com"]').waitFor({ timeout: WAIT.timeoutMs });
    } finally {
      await context.close();
    }
  });

  test('the system stops: the page says the admin API is not answering instead of showing stale numbers', async () => {
    await system!.stop();
    await page.locator('#banner').waitFor({ state: 'visible', timeout: WAIT.timeoutMs });
    assert.match((await page.locator('#banner').textContent()) ?? '', /The admin API is not answering since .*The system may be stopped/);
    assert.equal(await page.locator('#servers-section').isVisible(), false, 'the table is hidden');
    assert.equal(await page.locator('#topology-version').textContent(), '-', 'no stale version either');
    assert.equal(await page.evaluate('document.body.dataset.connection'), 'lost');
    assert.deepEqual(problems, []);
  });
});
