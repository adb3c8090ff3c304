// Chromium for the dashboard's tests, in a network namespace of its own: Chromium aborts every
// request in flight (ERR_NETWORK_CHANGED) when the host's interfaces change, which other tests
// (bridges, taps) and our own VMs do at any time. In its namespace nothing changes; its
// loopback ports given here reach the host's through unix sockets (the file system is shared):
// chromium -> 127.0.0.1:P (namespace) -> forwarder -> DIR/P.sock -> forwarder -> 127.0.0.1:P.
// DevTools go over a pipe (no port). Without `unshare` or as non-root, an ordinary launch.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));

function pipeTo(connect) {
  return (client) => {
    const upstream = connect();
    client.pipe(upstream).pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  };
}

// Inside the namespace (run as `node browser.mjs inner DIR PORT...`): loopback ports to sockets.
if (process.argv[2] === 'inner') {
  const dir = process.argv[3];
  const ports = process.argv.slice(4);
  let listening = 0;
  for (const port of ports) {
    net.createServer(pipeTo(() => net.connect(path.join(dir, `${port}.sock`))))
      .listen(Number(port), '127.0.0.1', () => {
        if (++listening === ports.length) fs.writeFileSync(path.join(dir, 'ready'), '');
      });
  }
  // Gone with the browser that exec'd over our parent shell.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500);
}

export async function launch(ports, options = {}) {
  const chromium = process.env.SV_CHROMIUM || '/usr/bin/chromium';
  const args = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1024,768'];
  const common = { headless: true, args, defaultViewport: { width: 1024, height: 768 }, pipe: true, ...options };
  const isolated = process.getuid() === 0 && fs.existsSync('/usr/bin/unshare');
  if (!isolated) return { browser: await puppeteer.launch({ executablePath: chromium, ...common }), close: () => {} };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sv-dash-ns-'));
  const servers = ports.map((port) => {
    const s = net.createServer(pipeTo(() => net.connect(port, '127.0.0.1')));
    s.listen(path.join(dir, `${port}.sock`));
    return s;
  });
  const wrapper = path.join(dir, 'chromium');
  fs.writeFileSync(wrapper, `#!/bin/sh
exec /usr/bin/unshare -n -- /bin/sh -c 'ip link set lo up && { "${process.execPath}" "${HERE}/browser.mjs" inner "${dir}" ${ports.join(' ')} 3>&- 4>&- & } && while [ ! -e "${dir}/ready" ]; do sleep 0.05; done && exec "${chromium}" "$@"' sh "$@"
`, { mode: 0o755 });
  const browser = await puppeteer.launch({ executablePath: wrapper, ...common });
  return {
    browser,
    close: () => {
      for (const s of servers) s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
