// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// `dnslb up` of the example topology (four pools, HAProxy on the Web services VIPs) on 127.0.32.x:
// the token from the printed URL, the server table grouped by pool with the HLB's view, block/unblock,
// the quorum refusal and its force, the bindings chart's data, a drain of signed-in users with its
// bar, a failover (a killed server), and the banner once the system stops. Screenshots of the drain
// and the failover go to DATA/screenshots (and to $DNSLB_SCREENSHOTS when set), to be looked at.
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import type { PoolStatus, ServerEntry } from '../../src/cli/commands/admin-client.ts';
import { REPO } from '../helpers/dns-process.ts';
import { eventually } from '../helpers/eventually.ts';
import { start, type Running } from '../helpers/process.ts';
import { startUp, type UpSystem } from '../helpers/up.ts';

const NET = '127.0.32';
const FRONTENDS = ['fe1.contoso.com', 'fe2.contoso.com', 'fe3.contoso.com'];
// The example's pools, in its order, with their servers; pools with Web services run HAProxy.
const DUBLIN = ['dub-fe1.contoso.com', 'dub-fe2.contoso.com', 'dub-fe3.contoso.com'];
const POOLS: [string, string[]][] = [
  ['pool01.contoso.com', FRONTENDS],
  ['pool02.contoso.com', DUBLIN],
  ['dirpool.contoso.com', ['dir1.contoso.com', 'dir2.contoso.com']],
  ['edgepool.contoso.com', ['edge1.contoso.com', 'edge2.contoso.com']],
  ['medpool.contoso.com', ['med1.contoso.com', 'med2.contoso.com']],
];
const BEHIND_HAPROXY = [...FRONTENDS, ...DUBLIN, 'dir1.contoso.com', 'dir2.contoso.com'];
const USERS = 150;
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
  let simulator: Running | undefined;
  const problems: string[] = [];
  const screenshots: string[] = [];

  /** A full-page screenshot in DATA/screenshots (and $DNSLB_SCREENSHOTS): the drain and the failover, for a person to look at. */
  const screenshot = async (name: string): Promise<string> => {
    const dir = join(system!.dataDir, 'screenshots');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    const copyTo = process.env['DNSLB_SCREENSHOTS'];
    if (copyTo) {
      await mkdir(copyTo, { recursive: true });
      await copyFile(file, join(copyTo, `${name}.png`));
    }
    screenshots.push(file);
    return file;
  };

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
    // With TLS (the default): HAProxy runs on the Web services VIPs only then, and the HLB column shows its view.
    // A slow hand-over (2 users a second from a server of three) keeps a drain on screen long enough
    // to be seen; a killed server stays down (no restart) so that the failover can be looked at.
    const edit = (text: string) => text.replace('rehome: { batchSize: 100, intervalMs: 1000 }', 'rehome: { batchSize: 4, intervalMs: 1000 }').replace('restartDelayMs: 2000', 'restartDelayMs: 600000');
    [system, browser] = await Promise.all([startUp(NET, { edit }), chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS })]);
    const printed = /^dashboard (http:\/\/\S+\/dashboard#token=\S+)$/m.exec(system.process.output());
    assert.ok(printed, `dnslb up prints the dashboard URL with the token:\n${system.process.output()}`);
    dashboardUrl = printed[1]!;
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    watch(page);
    await page.goto(dashboardUrl);
  });
  after(async () => {
    await simulator?.stop();
    await browser?.close();
    await system?.stop();
    if (screenshots.length > 0) console.log(`# screenshots: ${screenshots.join(' ')}`);
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
    assert.equal(await page.locator('#servers-body tr.pool[data-pool="pool01.contoso.com"]').textContent(), 'pool01.contoso.com (frontend, HAProxy on its Web services VIPs): 3 servers, 3 available');
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

  test('every pool of the example under its own heading, its servers below it; the HLB column shows HAProxy\'s view', async () => {
    const layout = async () =>
      (await page.evaluate(`[...document.querySelectorAll('#servers-body tr')].map((tr) => tr.classList.contains('pool') ? 'pool ' + tr.dataset.pool : tr.dataset.server)`)) as string[];
    // Every pool runs its servers, the Edge pool too (issue 14): each heading with its rows under it.
    const expected = POOLS.flatMap(([pool, servers]) => [`pool ${pool}`, ...servers]);
    await eventually(async () => assert.deepEqual(await layout(), expected), WAIT);
    const heading = async (pool: string) => (await page.locator(`#servers-body tr.pool[data-pool="${pool}"]`).textContent()) ?? '';
    await eventually(async () => assert.equal(await heading('pool02.contoso.com'), 'pool02.contoso.com (frontend, HAProxy on its Web services VIPs): 3 servers, 3 available'), WAIT);
    assert.equal(await heading('dirpool.contoso.com'), 'dirpool.contoso.com (director, HAProxy on its Web services VIPs): 2 servers, 2 available');
    assert.equal(await heading('edgepool.contoso.com'), 'edgepool.contoso.com (edge): 2 servers, 2 available');
    assert.equal(await heading('medpool.contoso.com'), 'medpool.contoso.com (mediation): 2 servers, 2 available');
    // HAProxy's word for the servers behind it (its checks passed), a dash for the pools behind none.
    await eventually(async () => {
      for (const server of BEHIND_HAPROXY) assert.equal(await cell(server, 'hlb'), 'UP', server);
    }, WAIT);
    for (const server of ['med1.contoso.com', 'med2.contoso.com']) assert.equal(await cell(server, 'hlb'), '-', server);
  });

  test('drain fe2 with users signed in: a bar shows users handed over against those to hand over; HAProxy drains it too', async () => {
    simulator = start(process.execPath, ['bin/dnslb.js', 'client', 'simulate', '--domain', 'contoso.com', '--dns', `${system!.dns.address}:${system!.dns.port}`, '--users', String(USERS), '--duration', '10m', '--summary-every', '10m'], { cwd: REPO });
    await eventually(async () => {
      const servers = (await apiStatus()).servers.filter((entry) => FRONTENDS.includes(entry.server));
      assert.equal(servers.reduce((sum, entry) => sum + (entry.status?.bindings.users ?? 0), 0), USERS, simulator!.output());
    }, { ...WAIT, timeoutMs: 60_000 });
    const held = (await apiEntry('fe2.contoso.com')).status!.bindings.users;
    assert.ok(held > 0, 'fe2 has users to hand over');
    await click('fe2.contoso.com', 'drain');
    const drainCell = row('fe2.contoso.com').locator('td[data-field="drain"]');
    // Part of the way: some handed over, not all (at 2 users a second, tens of seconds for fe2's share).
    const fraction = await eventually(async () => {
      const value = Number(await drainCell.getAttribute('data-fraction', { timeout: WAIT.timeoutMs }));
      assert.ok(value > 0, `handed over some: ${value}`);
      return value;
    }, { ...WAIT, timeoutMs: 60_000 });
    assert.equal(await cell('fe2.contoso.com', 'admin'), 'draining');
    assert.equal(Number(await drainCell.locator('progress').getAttribute('value')), fraction);
    const [handedOver, total] = ((await drainCell.locator('.drain-label').textContent()) ?? '').split('/').map(Number);
    assert.ok(handedOver! > 0 && handedOver! <= total! && Math.abs(handedOver! / total! - fraction) < 1e-9, `${handedOver}/${total} against ${fraction}`);
    // The page reads HAProxy's view on its own poll: the first users can be handed over (paced, from the
    // drain's first moment) before the next poll shows HAProxy's DRAIN.
    await eventually(async () => assert.match((await cell('fe2.contoso.com', 'hlb')) ?? '', /^(DRAIN|DOWN)/, 'HAProxy drains it as well'), WAIT);
    await screenshot('dashboard-drain');
    // Drained: a full bar, everyone handed over, and HAProxy takes it out (its /health says 503).
    await eventually(async () => {
      assert.equal(await cell('fe2.contoso.com', 'state'), 'drained');
      assert.equal(await drainCell.getAttribute('data-fraction'), '1');
      assert.equal(await cell('fe2.contoso.com', 'hlb'), 'DOWN');
    }, { ...WAIT, timeoutMs: 120_000 });
    const label = ((await drainCell.locator('.drain-label').textContent()) ?? '').split('/').map(Number);
    assert.equal(label[0], label[1], `all handed over: ${label.join('/')}`);
    assert.ok(label[0]! >= held, `at least the ${held} users fe2 held: ${label.join('/')}`);
    await click('fe2.contoso.com', 'resume');
    await eventually(async () => {
      assert.equal(await cell('fe2.contoso.com', 'state'), 'active');
      assert.equal(await drainCell.textContent(), '', 'no bar once resumed');
      assert.equal(await cell('fe2.contoso.com', 'hlb'), 'UP');
    }, WAIT);
  });

  test('failover: fe3 killed — its row says so, HAProxy\'s checks take it out, the pool heading counts it unavailable', async () => {
    const pid = (await apiEntry('fe3.contoso.com')).process!.pid!;
    process.kill(pid, 'SIGKILL');
    await eventually(async () => {
      assert.notEqual(await cell('fe3.contoso.com', 'state'), 'active');
      assert.equal(await cell('fe3.contoso.com', 'available'), 'no');
      assert.equal(await cell('fe3.contoso.com', 'hlb'), 'DOWN');
      assert.match((await page.locator('#servers-body tr.pool[data-pool="pool01.contoso.com"]').textContent()) ?? '', /: 3 servers, 2 available$/);
    }, { ...WAIT, timeoutMs: 60_000 });
    for (const server of ['fe1.contoso.com', 'fe2.contoso.com']) assert.equal(await cell(server, 'hlb'), 'UP', server);
    // Its users signed in again at fe1 and fe2 (their connections to fe3 were reset); the table shows them there.
    await eventually(async () => {
      const users = await Promise.all(['fe1.contoso.com', 'fe2.contoso.com'].map(async (server) => Number(await cell(server, 'primary')) + Number(await cell(server, 'backup'))));
      assert.equal(users[0]! + users[1]!, USERS, `${users.join(' + ')} bindings at fe1 and fe2`);
    }, { ...WAIT, timeoutMs: 90_000 });
    await screenshot('dashboard-failover');
    await simulator?.stop();
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
