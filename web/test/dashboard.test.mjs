// The dashboard in a real browser (Debian's chromium, headless, driven by puppeteer-core)
// against a real storevisord that runs kv and inventory: the login page refuses a wrong token
// and logs in with the right one; the workloads show healthy; restarting inventory from the
// page changes its restart count; a cross-site form POST and forged requests are refused.
// Every wait is on a condition (generous timeouts), never a fixed sleep. Screenshots go to
// $SV_ARTEFACTS.
// Environment: SV_URL (http://127.0.0.1:PORT), SV_TOKEN, SV_ARTEFACTS, SV_CHROMIUM.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const URL = process.env.SV_URL;
const TOKEN = process.env.SV_TOKEN;
const ART = process.env.SV_ARTEFACTS;
const LONG = 120000;
fs.mkdirSync(ART, { recursive: true });

function fail(msg) { throw new Error(msg); }
function step(msg) { console.log(`== ${msg}`); }

// One request from node (not the browser): {status, body}.
function request(method, url, headers = {}, body = '') {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function restartsOf(name) {
  const r = await request('GET', `${URL}/v1/workloads/${name}`, { Authorization: `Bearer ${TOKEN}` });
  if (r.status !== 200) fail(`GET ${name} with the token: ${r.status} ${r.body}`);
  return JSON.parse(r.body).restarts;
}

// A page of another site (localhost is another site than 127.0.0.1) whose form posts to the
// daemon as soon as it loads.
function startEvilSite(target) {
  const server = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<!doctype html><form id="f" method="post" action="${target}">
      <input name="x" value="1"></form><script>document.getElementById('f').submit()</script>`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// The other site's page, served before the browser starts (its port is forwarded too).
const evil = await startEvilSite(`${URL}/v1/workloads/inventory/restart`);
const { browser, close } = await launch([new globalThis.URL(URL).port, evil.address().port]);
let page;
try {
  page = await browser.newPage();
  page.setDefaultTimeout(LONG);
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));

  step('without a session: / leads to the login page; assets and the API are refused');
  await page.goto(`${URL}/`, { waitUntil: 'load' });
  if (!page.url().endsWith('/login')) fail(`/ went to ${page.url()}, not /login`);
  await page.screenshot({ path: path.join(ART, '01-login.png') });
  for (const p of ['/ui/app.js', '/v1/workloads', '/ui/index.html']) {
    const r = await request('GET', `${URL}${p}`);
    if (r.status !== 401) fail(`${p} without a session: ${r.status}`);
  }

  step('a wrong token is refused');
  await page.type('#token', `not-${TOKEN}`);
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click('#login')]);
  if (wrong.status() !== 401) fail(`wrong token answered ${wrong.status()}`);
  await page.waitForSelector('#login-error');
  if ((await page.cookies()).some((c) => c.name === 'sv_session')) fail('a cookie after a wrong token');
  await page.screenshot({ path: path.join(ART, '02-wrong-token.png') });

  step('the right token logs in: an HttpOnly, SameSite=Strict session cookie');
  await page.type('#token', TOKEN);
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  if (new globalThis.URL(page.url()).pathname !== '/') fail(`after login: ${page.url()}`);
  const cookie = (await page.cookies()).find((c) => c.name === 'sv_session');
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== 'Strict') fail(`cookie: ${JSON.stringify(cookie)}`);
  if (await page.evaluate(() => document.cookie.includes('sv_session'))) fail('the cookie is readable by scripts');

  step('the workloads show healthy, the box panel its profile');
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('tr[data-name="kv"][data-health="healthy"]', { timeout: LONG });
  await page.waitForSelector('tr[data-name="inventory"][data-health="healthy"]', { timeout: LONG });
  const ports = await page.$eval('tr[data-name="inventory"] td.ports', (e) => e.textContent);
  if (ports !== `${process.env.SV_PORT}:8080`) fail(`inventory's ports shown: ${ports}`);
  const boxText = await page.$eval('#box-facts', (e) => e.textContent);
  if (!boxText.includes('dash-e2e')) fail(`box panel without the profile: ${boxText}`);
  await page.screenshot({ path: path.join(ART, '03-workloads.png') });

  step('restart inventory from the page (confirmed): its restart count changes');
  const before = Number(await page.$eval('tr[data-name="inventory"]', (e) => e.dataset.restarts));
  await page.click('tr[data-name="inventory"] button[data-action="restart"]');
  await page.waitForSelector('#confirm[open]');
  await page.screenshot({ path: path.join(ART, '04-confirm.png') });
  await page.click('#confirm-ok');
  await page.waitForFunction(
    (n) => Number(document.querySelector('tr[data-name="inventory"]').dataset.restarts) > n,
    { timeout: LONG }, before);
  const shown = Number(await page.$eval('tr[data-name="inventory"] td.restarts', (e) => e.textContent));
  if (shown <= before) fail(`restarts shown ${shown}, was ${before}`);
  if ((await restartsOf('inventory')) !== shown) fail('the page and the API disagree on restarts');
  await page.waitForSelector('tr[data-name="inventory"][data-health="healthy"]', { timeout: LONG });
  await page.screenshot({ path: path.join(ART, '05-restarted.png') });

  step('the workload detail: log and charts');
  await page.click('tr[data-name="inventory"] button.name');
  await page.waitForSelector('#detail:not([hidden]) .uplot');
  // The daemon samples every 10 s: its first sample of inventory comes within one interval.
  await page.waitForFunction(async () => {
    const r = await fetch('/ui/history/inventory');
    return r.ok && (await r.json()).points.length >= 1;
  }, { timeout: LONG, polling: 500 });
  const noSession = await request('GET', `${URL}/ui/history/inventory`);
  if (noSession.status !== 401) fail(`history without a session: ${noSession.status}`);
  await page.screenshot({ path: path.join(ART, '06-detail.png') });

  step('a cross-site form POST is refused (no cookie is sent) and restarts nothing');
  const restarts = await restartsOf('inventory');
  {
    const evilUrl = `http://localhost:${evil.address().port}/`;
    const waitPost = page.waitForResponse((r) => r.url().endsWith('/v1/workloads/inventory/restart'));
    await page.goto(evilUrl);
    const posted = await waitPost;
    if (posted.status() !== 401) fail(`cross-site POST answered ${posted.status()}`);
    await page.screenshot({ path: path.join(ART, '07-cross-site.png') });
  }

  step('forged requests with the session cookie: no CSRF token, or another origin, are refused');
  const jar = `sv_session=${cookie.value}`;
  const csrf = JSON.parse((await request('GET', `${URL}/ui/session`, { Cookie: jar })).body).csrf;
  const target = `${URL}/v1/workloads/inventory/restart`;
  const noCsrf = await request('POST', target, { Cookie: jar, Origin: URL });
  if (noCsrf.status !== 403) fail(`POST without X-CSRF-Token: ${noCsrf.status}`);
  const otherOrigin = await request('POST', target, { Cookie: jar, 'X-CSRF-Token': csrf, Origin: 'http://evil.example' });
  if (otherOrigin.status !== 403) fail(`POST from another origin: ${otherOrigin.status}`);
  const crossLogin = await request('POST', `${URL}/login`, { Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' }, `token=${TOKEN}`);
  if (crossLogin.status !== 403) fail(`cross-site login: ${crossLogin.status}`);
  if ((await restartsOf('inventory')) !== restarts) fail('a refused request restarted inventory');

  step('apply from the page: a bad profile is refused with its message');
  const bad = path.join(ART, 'bad-profile.yaml');
  fs.writeFileSync(bad, 'apiVersion: storevisor.io/v1\nkind: StoreProfile\nmetadata: {name: x}\nspec:\n  workloads: [{name: BAD NAME}]\n');
  await page.goto(`${URL}/`);
  await page.waitForSelector('body[data-ready="1"]');
  await (await page.$('#profile-file')).uploadFile(bad);
  await page.click('#plan-button');
  await page.waitForFunction(() => document.querySelector('#apply-status').textContent.includes('refused'));
  if (!(await page.$eval('#apply-status', (e) => e.textContent)).includes('bad-profile.yaml')) {
    fail(`no file:line in the refusal: ${await page.$eval('#apply-status', (e) => e.textContent)}`);
  }

  step('apply from the page: the plan creates extra; confirmed, extra runs');
  await (await page.$('#profile-file')).uploadFile(process.env.SV_PROFILE2);
  await page.click('#plan-button');
  await page.waitForSelector('#plan:not([hidden])');
  const plan = await page.$eval('#plan-steps', (e) => e.textContent);
  if (!plan.includes('create extra')) fail(`plan: ${plan}`);
  await page.screenshot({ path: path.join(ART, '08-plan.png') });
  await page.click('#apply-button');
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForFunction(() => document.querySelector('#apply-status').textContent.includes('generation 2'));
  await page.waitForSelector('tr[data-name="extra"][data-state="running"]', { timeout: LONG });
  await page.screenshot({ path: path.join(ART, '09-applied.png') });

  step('log out ends the session');
  await page.goto(`${URL}/`);
  await page.waitForSelector('body[data-ready="1"]');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#logout')]);
  if (!page.url().endsWith('/login')) fail(`after logout: ${page.url()}`);
  const after = await request('GET', `${URL}/v1/workloads`, { Cookie: jar });
  if (after.status !== 401) fail(`the old session after logout: ${after.status}`);
  console.log('PASS');
} catch (e) {
  if (page) await page.screenshot({ path: path.join(ART, 'failure.png') }).catch(() => {});
  console.log(`FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  close();
  evil.close();
}
