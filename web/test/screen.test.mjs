// The legacy VM's screen in the dashboard (noVNC over the daemon's RFB proxy), in Debian's
// headless chromium: log in, open the screen of `lane`, and read "STOREVISOR POS" by OCR
// (tesseract) from a screenshot of the page's canvas. The browser is never asked for the VNC
// password (the daemon answers QEMU's authentication). Waits on conditions only, with generous
// timeouts (a TCG boot). Screenshots in $SV_ARTEFACTS.
// Environment: SV_URL, SV_TOKEN, SV_ARTEFACTS, SV_CHROMIUM, SV_VNC_PASSWORD.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { launch } from './browser.mjs';

const URL = process.env.SV_URL;
const TOKEN = process.env.SV_TOKEN;
const ART = process.env.SV_ARTEFACTS;
const LONG = 240000;
fs.mkdirSync(ART, { recursive: true });

function fail(msg) { throw new Error(msg); }
function step(msg) { console.log(`== ${msg}`); }

const { browser, close } = await launch([new globalThis.URL(URL).port]);
let page;
try {
  page = await browser.newPage();
  page.setDefaultTimeout(LONG);
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  const frames = [];
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketFrameReceived', (e) => frames.push(e.response.payloadData));
  cdp.on('Network.webSocketFrameSent', (e) => frames.push(e.response.payloadData));

  step('log in; lane (legacy-vm) runs');
  await page.goto(`${URL}/login`);
  await page.type('#token', TOKEN);
  await Promise.all([page.waitForNavigation(), page.click('#login')]);
  await page.waitForSelector('body[data-ready="1"]');
  await page.waitForSelector('tr[data-name="lane"][data-state="running"] button[data-action="screen"]:not([disabled])');

  step('open the screen: noVNC connects without a password');
  await page.click('tr[data-name="lane"] button[data-action="screen"]');
  await page.waitForSelector('#screen[data-connected="1"] canvas');

  step('the canvas reads "STOREVISOR POS" (tesseract), once the POS screen is up');
  const shot = path.join(ART, 'screen-canvas.png');
  const deadline = Date.now() + LONG;
  let text = '';
  const ocrInput = path.join(ART, 'screen-ocr.png');
  for (;;) {
    const canvas = await page.$('#screen-view canvas');
    await canvas.screenshot({ path: shot });
    // As the legacy engine's screen check does (src/legacy/screen.cc): each row's most common
    // luminance is its background, ink is what differs (white on blue and black on grey alike),
    // scaled 2x; tesseract in single-block mode.
    const png = await page.evaluate(() => {
      const src = document.querySelector('#screen-view canvas');
      const { width: w, height: h } = src;
      const data = src.getContext('2d').getImageData(0, 0, w, h).data;
      const out = document.createElement('canvas');
      out.width = w * 2;
      out.height = h * 2;
      const ctx = out.getContext('2d');
      const img = ctx.createImageData(w * 2, h * 2);
      const luma = new Array(w);
      for (let y = 0; y < h; y++) {
        const hist = new Array(256).fill(0);
        for (let x = 0; x < w; x++) {
          const i = (y * w + x) * 4;
          luma[x] = Math.round(0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]);
          hist[luma[x]]++;
        }
        const bg = hist.indexOf(Math.max(...hist));
        for (let x = 0; x < w; x++) {
          const v = 255 - Math.min(255, Math.abs(luma[x] - bg) * 2);
          for (let dy = 0; dy < 2; dy++) {
            for (let dx = 0; dx < 2; dx++) {
              const o = ((y * 2 + dy) * w * 2 + x * 2 + dx) * 4;
              img.data[o] = img.data[o + 1] = img.data[o + 2] = v;
              img.data[o + 3] = 255;
            }
          }
        }
      }
      ctx.putImageData(img, 0, 0);
      return out.toDataURL('image/png').split(',')[1];
    });
    fs.writeFileSync(ocrInput, Buffer.from(png, 'base64'));
    text = execFileSync('tesseract', [ocrInput, '-', '--psm', '6', '-l', 'eng'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    if (text.includes('STOREVISOR POS')) break;
    if (Date.now() > deadline) fail(`no "STOREVISOR POS" on the canvas; OCR read: ${text}`);
    await page.waitForNetworkIdle({ idleTime: 500, timeout: 10000 }).catch(() => {});
  }
  await page.screenshot({ path: path.join(ART, 'screen-page.png') });

  step('the VNC password never reached the browser');
  const pw = process.env.SV_VNC_PASSWORD;
  const html = await page.content();
  if (html.includes(pw)) fail('the page holds the VNC password');
  const b64 = Buffer.from(pw).toString('base64');
  if (frames.some((f) => f.includes(pw) || f.includes(b64))) fail('a WebSocket frame holds the VNC password');
  console.log('PASS');
} catch (e) {
  if (page) await page.screenshot({ path: path.join(ART, 'screen-failure.png') }).catch(() => {});
  console.log(`FAIL: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  close();
}
