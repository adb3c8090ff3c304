// The dashboard's figures (see run.sh). One JSON object on stdout.
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const require = createRequire(`${process.env.SV_WEB}/package.json`);
const puppeteer = require('puppeteer-core');
const URL = process.env.SV_URL;
const TOKEN = process.env.SV_TOKEN;
const ROUNDS = 5;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${process.env.SV_DAEMON_PID}/status`, 'utf8'))[1]);
const ps = () => JSON.parse(execFileSync(process.env.SV_CLI, ['--socket', process.env.SV_SOCK, 'ps', '-o', 'json']));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function login(page) {
  await page.goto(`${URL}/login`);
  await page.type('#token', TOKEN);
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 60000 });
}

const browser = await puppeteer.launch({
  executablePath: process.env.SV_CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  defaultViewport: { width: 1024, height: 768 },
});
const out = { rounds: ROUNDS };
try {
  // The daemon before any page was served (its asset cache still empty).
  const fresh = rssKiB();
  // First load with a cold cache: a fresh context (empty cache), logged in, then / measured.
  const loads = [];
  let wire = 0;
  let raw = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    await login(page);
    const cdp = await page.createCDPSession();
    await cdp.send('Network.enable');
    await cdp.send('Network.clearBrowserCache');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    let bytes = 0;
    const sizes = new Map();
    cdp.on('Network.responseReceived', (e) => sizes.set(e.requestId, e.response.headers['content-length'] || e.response.headers['Content-Length']));
    cdp.on('Network.dataReceived', (e) => { raw += i === 0 ? e.dataLength : 0; });
    cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
    const t0 = performance.now();
    await page.goto(`${URL}/`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60000 });
    loads.push(performance.now() - t0);
    if (i === 0) wire = bytes;
    await ctx.close();
  }
  out.first_load_ms = { median: Number(median(loads).toFixed(1)), all: loads.map((x) => Number(x.toFixed(1))) };
  out.transfer_bytes = { on_the_wire_incl_headers: wire, uncompressed_body: raw };

  // Change to shown: kill inventory's process; the page's row changes (state or restarts).
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await login(page);
  const lat = [];
  for (let i = 0; i < ROUNDS; i++) {
    await page.waitForSelector('tr[data-name="inventory"][data-state="running"]', { timeout: 60000 });
    const before = await page.$eval('tr[data-name="inventory"]', (e) => `${e.dataset.state}/${e.dataset.restarts}`);
    const pid = ps().find((w) => w.name === 'inventory').pid;
    await page.evaluate((b) => {
      window.svSeen = new Promise((resolve) => {
        const row = document.querySelector('tr[data-name="inventory"]');
        const check = () => {
          if (`${row.dataset.state}/${row.dataset.restarts}` !== b) { obs.disconnect(); resolve(Date.now()); }
        };
        const obs = new MutationObserver(check);
        obs.observe(row, { attributes: true });
      });
    }, before);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const seen = await page.evaluate(() => window.svSeen);
    lat.push(seen - t0);
    await sleep(500);
  }
  out.change_to_shown_ms = { median: median(lat), all: lat };
  await ctx.close();

  // RSS: none open, then five live dashboards idle for 10 s.
  await sleep(3000);
  const idle = rssKiB();
  const pages = [];
  for (let i = 0; i < 5; i++) {
    const c = await browser.createBrowserContext();
    const p = await c.newPage();
    await login(p);
    pages.push(c);
  }
  await sleep(10000);
  const five = rssKiB();
  out.daemon_rss_kib = { before_any_page: fresh, none_open: idle, five_dashboards: five, delta_five_vs_none: five - idle, delta_five_vs_before_any_page: five - fresh };
  for (const c of pages) await c.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(out, null, 1));
