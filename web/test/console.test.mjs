// The microVM's serial console in the dashboard (xterm.js over the daemon's WebSocket relay),
// in Debian's headless chromium: log in, open the console of `till`, type `uname` and see
// `Linux` answered on a line of its own. A cross-site WebSocket is refused. Waits on
// conditions only, with generous timeouts (TCG guests are slow). Screenshots in $SV_ARTEFACTS.
// Environment: SV_URL, SV_TOKEN, SV_ARTEFACTS, SV_CHROMIUM.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const URL = process.env.SV_URL;
const TOKEN = process.env.SV_TOKEN;
const ART = process.env.SV_ARTEFACTS;
const LONG = 180000;
fs.mkdirSync(ART, { recursive: true });

function fail(msg) { throw new Error(msg); }
function step(msg) { console.log(`== ${msg}`); }

// A WebSocket handshake from node with the session cookie and the given Origin: the status.
function handshake(cookie, origin) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${URL}/ui/ws/console/till`, {
      headers: {
        Cookie: cookie, Origin: origin, Connection: 'Upgrade', Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end();
  });
}

const { browser, close } = await launch([new globalThis.URL(URL).port]);
let page;
try {
  page = await browser.newPage();
  page.setDefaultTimeout(LONG);
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));

  step('log in; till (microvm) runs');
  await page.goto(`${URL}/login`);
  await page.type('#token', TOKEN);
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('tr[data-name="till"][data-state="running"] button[data-action="console"]:not([disabled])');
  const cookie = (await page.cookies()).find((c) => c.name === 'sv_session');

  step('a WebSocket from another origin is refused, even with the cookie');
  const cross = await handshake(`sv_session=${cookie.value}`, 'http://evil.example');
  if (cross !== 403) fail(`cross-site WebSocket: ${cross}`);

  step('the console: `uname` is answered `Linux`');
  await page.click('tr[data-name="till"] button[data-action="console"]');
  await page.waitForSelector('#console[data-connected="1"]');
  await page.waitForSelector('#term .xterm-helper-textarea');
  await page.focus('#term .xterm-helper-textarea');
  // Typed once more if unanswered: keys sent before the guest's shell read its tty are lost.
  await page.keyboard.type('uname\n');
  try {
    await page.waitForFunction(() => window.svConsoleText().split('\n').some((l) => l.trim() === 'Linux'), { timeout: 30000 });
  } catch {
    await page.keyboard.type('uname\n');
    await page.waitForFunction(() => window.svConsoleText().split('\n').some((l) => l.trim() === 'Linux'), { timeout: LONG });
  }
  await page.screenshot({ path: path.join(ART, 'console-uname.png') });

  step('a second console while the first is open is refused (one client at a time)');
  const second = await handshake(`sv_session=${cookie.value}`, URL);
  if (second !== 409) fail(`second console: ${second}`);
  console.log('PASS');
} catch (e) {
  if (page) await page.screenshot({ path: path.join(ART, 'console-failure.png') }).catch(() => {});
  if (page) console.log(await page.evaluate(() => window.svConsoleText && window.svConsoleText()).catch(() => ''));
  console.log(`FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  close();
}
