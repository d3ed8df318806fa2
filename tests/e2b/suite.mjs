// Runs the official E2B SDKs against a Cordon server and prints what they saw as one JSON document;
// tests/Cordon.Server.Tests/E2bCompatTests.cs asserts on it. The SDKs are pointed at Cordon the documented
// way: E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY in the environment.
//   node suite.mjs core <e2b|e2b-2.50>     commands, files, lifecycle with the plain SDK
//   node suite.mjs code                    the code interpreter (@e2b/code-interpreter)
//   node suite.mjs network <e2b|e2b-2.50>  allowInternetAccess, network.allowOut/denyOut, updateNetwork, Secret,
//                                          network.rules (the tests' own internet: TESTNET_PUBLIC, TESTNET_NAME,
//                                          TESTNET_SECRET, TESTNET_TAG)
//   node suite.mjs templates               Template.build (fromBaseImage, copy with .dockerignore, setEnvs, runCmd,
//                                          setWorkdir, setStartCmd with waitForURL), exists, a rebuild from the cache,
//                                          fromDockerfile, a failing step; then Sandbox.create(name)
//                                          (and @e2b/cli's template create, list and delete)
//   node suite.mjs persistence <e2b|e2b-2.50>  createSnapshot, create from a snapshot, listSnapshots, deleteSnapshot,
//                                          fork, pause({keepMemory}), connect, lifecycle (autoPause, autoResume),
//                                          Volume and volumeMounts (E2B_VOLUME_API_URL)
import { createHash } from 'node:crypto';

import http from 'node:http';

const [scenario, sdk = 'e2b'] = process.argv.slice(2);
const server = new URL(process.env.E2B_SANDBOX_URL);

// A tiny server that accepts a WebSocket handshake and then echoes the bytes it gets in upper case (raw,
// without WebSocket framing: the proxy in between only carries bytes once the upgrade is done).
const ECHO_SERVER = `import base64, hashlib, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8001))
s.listen()
while True:
    c, _ = s.accept()
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        d = c.recv(4096)
        if not d:
            break
        head += d
    if b"\\r\\n\\r\\n" not in head:
        c.close()
        continue
    key = [l.split(b":", 1)[1].strip() for l in head.split(b"\\r\\n") if l.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    c.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: " + accept + b"\\r\\n\\r\\n")
    while True:
        d = c.recv(4096)
        if not d:
            break
        c.sendall(d.upper())
    c.close()
`;

// A plain HTTP GET to the Cordon server with the given headers (Node cannot resolve {port}-{id}.domain
// names here, so the host name travels in the Host header, as a wildcard DNS entry would deliver it).
function request(headers, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: server.hostname, port: server.port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function upgrade(headers, text) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: server.hostname, port: server.port, path: '/', headers: { ...headers, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (res, socket) => {
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (d) => {
        got += d;
        if (got.length >= text.length) {
          socket.destroy();
          resolve({ status: res.statusCode, got });
        }
      });
      socket.write(text);
    });
    req.on('response', (res) => resolve({ status: res.statusCode, got: null }));
    req.on('error', reject);
    req.end();
  });
}
const out = {};

async function attempt(name, body) {
  try {
    out[name] = await body();
  } catch (error) {
    out[name] = { error: error?.constructor?.name ?? 'Error', message: String(error?.message ?? error), exitCode: error?.exitCode, stdout: error?.stdout, stderr: error?.stderr };
  }
}

if (scenario === 'core') {
  const { Sandbox } = await import(sdk);
  const sbx = await Sandbox.create('base', { metadata: { suite: `core-${process.pid}` }, envs: { FOO: 'from-create' }, timeoutMs: 300_000 });
  out.sandboxId = sbx.sandboxId;
  try {
    // Commands in the foreground, with callbacks, exit codes and timeouts.
    const seen = { stdout: '', stderr: '' };
    await attempt('run', async () => {
      const r = await sbx.commands.run('echo "$FOO $BAR"; echo oops >&2; whoami; pwd', {
        envs: { BAR: 'from-run' },
        onStdout: (d) => { seen.stdout += d; },
        onStderr: (d) => { seen.stderr += d; },
      });
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode, seen };
    });
    await attempt('exitCode', () => sbx.commands.run('echo partial; exit 3'));
    await attempt('timeout', () => sbx.commands.run('sleep 30', { timeoutMs: 1500 }));
    await attempt('root', async () => (await sbx.commands.run('whoami', { user: 'root' })).stdout);
    await attempt('cwd', async () => (await sbx.commands.run('pwd', { cwd: '/tmp' })).stdout);
    await attempt('badCwd', () => sbx.commands.run('pwd', { cwd: '/no/such/dir' }));

    // Background commands: wait, disconnect and connect again, stdin, kill, list.
    await attempt('background', async () => {
      const h = await sbx.commands.run('for i in 1 2 3; do echo line$i; sleep 0.2; done', { background: true });
      const r = await h.wait();
      return { pid: h.pid, stdout: r.stdout, exitCode: r.exitCode };
    });
    await attempt('reconnect', async () => {
      const h = await sbx.commands.run('sleep 1; echo after-reconnect', { background: true });
      await h.disconnect();
      const again = await sbx.commands.connect(h.pid);
      const r = await again.wait();
      return { stdout: r.stdout, exitCode: r.exitCode };
    });
    await attempt('stdin', async () => {
      const h = await sbx.commands.run('cat', { background: true, stdin: true });
      await sbx.commands.sendStdin(h.pid, 'typed input\n');
      await sbx.commands.closeStdin(h.pid);
      const r = await h.wait();
      return { stdout: r.stdout };
    });
    await attempt('killCommand', async () => {
      const h = await sbx.commands.run('sleep 300', { background: true });
      const listed = (await sbx.commands.list()).map((p) => p.pid);
      const killed = await h.kill();
      let ended;
      try {
        await h.wait();
        ended = 'no error';
      } catch (error) {
        ended = { error: error.constructor.name, exitCode: error.exitCode, message: error.message };
      }
      const killedAgain = await sbx.commands.kill(h.pid);
      return { listed: listed.includes(h.pid), killed, ended, killedAgain };
    });

    // A terminal: an interactive shell on a pty of the given size, typed into, resized, and left with exit.
    await attempt('pty', async () => {
      let output = '';
      const decoder = new TextDecoder();
      const terminal = await sbx.pty.create({ cols: 100, rows: 30, onData: (d) => { output += decoder.decode(d); } });
      const waitFor = async (text) => {
        for (let i = 0; i < 100 && !output.includes(text); i++) await new Promise((r) => setTimeout(r, 100));
      };
      await sbx.pty.sendInput(terminal.pid, new TextEncoder().encode('stty size; tty; echo pty-$((6*7))\n'));
      await waitFor('pty-42');
      await sbx.pty.resize(terminal.pid, { cols: 120, rows: 40 });
      await sbx.pty.sendInput(terminal.pid, new TextEncoder().encode('stty size; exit 0\n'));
      const result = await terminal.wait();
      return { output, exitCode: result.exitCode };
    });

    // Files: text, bytes, a 50 MiB stream, listing, directories, rename, remove, exists, info.
    await attempt('text', async () => {
      const info = await sbx.files.write('/home/user/notes/hello.txt', 'hello from e2b\n');
      return { path: info.path, read: await sbx.files.read('/home/user/notes/hello.txt') };
    });
    await attempt('relative', async () => {
      await sbx.files.write('relative.txt', 'in home');
      return (await sbx.commands.run('cat /home/user/relative.txt')).stdout;
    });
    await attempt('bytes', async () => {
      const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
      await sbx.files.write('/tmp/bytes.bin', bytes.buffer);
      return Array.from(await sbx.files.read('/tmp/bytes.bin', { format: 'bytes' }));
    });
    await attempt('big', async () => {
      const size = 50 * 1024 * 1024;
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4096) data.writeUInt32LE(i, i);
      const sent = createHash('sha256').update(data).digest('hex');
      await sbx.files.write('/tmp/big.bin', new Blob([data]));
      const stream = await sbx.files.read('/tmp/big.bin', { format: 'stream' });
      const hash = createHash('sha256');
      let length = 0;
      for await (const chunk of stream) {
        hash.update(chunk);
        length += chunk.length;
      }
      const inside = (await sbx.commands.run('sha256sum /tmp/big.bin')).stdout.split(' ')[0];
      return { sent, received: hash.digest('hex'), inside, length };
    });
    await attempt('gzip', async () => {
      const text = 'compressed on the way in '.repeat(1000);
      await sbx.files.write('/tmp/gzipped.txt', text, { gzip: true });
      const back = await sbx.files.read('/tmp/gzipped.txt', { gzip: true });
      return { same: back === text, length: back.length };
    });
    await attempt('writeFiles', async () => {
      const infos = await sbx.files.write([{ path: '/tmp/multi/a.txt', data: 'A' }, { path: '/tmp/multi/b.txt', data: 'B' }]);
      return infos.map((i) => i.path).sort();
    });
    // Signed URLs: plain HTTP with no key or header, good for the file and operation they were made for.
    await attempt('signedUrls', async () => {
      const upload = await sbx.uploadUrl('/tmp/signed/hello.txt', { useSignatureExpiration: 120 });
      const form = new FormData();
      form.append('file', new Blob(['uploaded with a signed URL']), 'hello.txt');
      const uploaded = await fetch(upload, { method: 'POST', body: form });
      const download = await sbx.downloadUrl('/tmp/signed/hello.txt');
      const downloaded = await fetch(download);
      const tampered = await fetch(download.replace('hello.txt', 'other.txt'));
      const wrongOperation = await fetch(download, { method: 'POST', body: form });
      return { uploaded: uploaded.status, downloaded: await downloaded.text(), tampered: tampered.status, wrongOperation: wrongOperation.status };
    });
    await attempt('filesList', async () => (await sbx.files.list('/home/user/notes')).map((e) => ({ name: e.name, type: e.type, size: e.size })));
    await attempt('makeDir', async () => [await sbx.files.makeDir('/tmp/made/deep'), await sbx.files.makeDir('/tmp/made/deep')]);
    await attempt('rename', async () => (await sbx.files.rename('/home/user/notes/hello.txt', '/home/user/notes/renamed.txt')).path);
    await attempt('exists', async () => [await sbx.files.exists('/home/user/notes/renamed.txt'), await sbx.files.exists('/home/user/notes/hello.txt')]);
    await attempt('fileInfo', async () => {
      const info = await sbx.files.getInfo('/home/user/notes/renamed.txt');
      return { name: info.name, type: info.type, size: info.size, permissions: info.permissions, owner: info.owner };
    });
    await attempt('remove', async () => {
      await sbx.files.remove('/home/user/notes');
      return await sbx.files.exists('/home/user/notes');
    });
    await attempt('readMissing', () => sbx.files.read('/no/such/file'));
    await attempt('watchDir', async () => {
      const seen = [];
      await sbx.files.makeDir('/tmp/watched');
      const watcher = await sbx.files.watchDir('/tmp/watched', (e) => seen.push(`${e.type} ${e.name}`), { recursive: true });
      await sbx.files.write('/tmp/watched/new.txt', 'x');
      await sbx.files.makeDir('/tmp/watched/sub');
      await sbx.files.write('/tmp/watched/sub/inner.txt', 'y');
      await sbx.files.remove('/tmp/watched/new.txt');
      for (let i = 0; i < 100 && !seen.includes('remove new.txt'); i++) await new Promise((r) => setTimeout(r, 100));
      await watcher.stop();
      return seen;
    });

    // A web server in the sandbox, reached through the sandbox's host name (getHost) and through E2B's
    // routing headers; and an HTTP upgrade (what WebSockets use) carried both ways.
    await attempt('ports', async () => {
      await sbx.files.write('/home/user/site/index.html', '<h1>served from the sandbox</h1>');
      await sbx.files.write('/home/user/echo.py', ECHO_SERVER);
      await sbx.commands.run('cd /home/user/site && python3 -m http.server 8000 --bind 127.0.0.1', { background: true, timeoutMs: 0 });
      await sbx.commands.run('python3 /home/user/echo.py', { background: true, timeoutMs: 0 });
      await sbx.commands.run('for i in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/8000) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/8001) 2>/dev/null && exit 0; sleep 0.1; done; exit 1');
      const host = sbx.getHost(8000);
      const byHost = await request({ host }, '/index.html');
      const byHeaders = await request({ 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '8000' }, '/index.html');
      const missing = await request({ 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '8999' }, '/');
      const echoed = await upgrade({ 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '8001' }, 'ping through the tunnel');
      return { host, byHost, byHeaders, missing, echoed };
    });

    // Lifecycle: info, list, timeout, and kill (true, then false).
    await attempt('getInfo', async () => {
      const info = await sbx.getInfo();
      return { sandboxId: info.sandboxId, templateId: info.templateId, metadata: info.metadata, state: info.state };
    });
    await attempt('setTimeout', async () => {
      await sbx.setTimeout(600_000);
      const info = await sbx.getInfo();
      return Math.round((new Date(info.endAt).getTime() - Date.now()) / 1000);
    });
    await attempt('isRunning', () => sbx.isRunning());
    await attempt('list', async () => {
      const paginator = Sandbox.list({ query: { metadata: { suite: `core-${process.pid}` } } });
      const items = await paginator.nextItems();
      return items.map((s) => s.sandboxId);
    });
    await attempt('pages', async () => {
      const other = await Sandbox.create('base', { metadata: { suite: `core-${process.pid}` }, timeoutMs: 60_000 });
      try {
        const paginator = Sandbox.list({ query: { metadata: { suite: `core-${process.pid}` } }, limit: 1 });
        const pages = [];
        while (paginator.hasNext) pages.push((await paginator.nextItems()).map((s) => s.sandboxId));
        return { pages, ids: [sbx.sandboxId, other.sandboxId] };
      } finally {
        await other.kill();
      }
    });
    await attempt('connect', async () => {
      const again = await Sandbox.connect(sbx.sandboxId);
      return (await again.commands.run('echo connected')).stdout;
    });
    await attempt('metrics', async () => {
      const metrics = await sbx.getMetrics();
      return { count: metrics.length, memUsed: metrics[0]?.memUsed, memTotal: metrics[0]?.memTotal, cpuCount: metrics[0]?.cpuCount };
    });
    await attempt('pause', async () => {
      await sbx.files.write('/home/user/kept.txt', 'survives a pause');
      const paused = await sbx.pause();
      const state = (await sbx.getInfo()).state;
      const pausedAgain = await sbx.pause();
      const resumed = await Sandbox.connect(sbx.sandboxId);
      const stateAfter = (await resumed.getInfo()).state;
      return { paused, state, pausedAgain, stateAfter, kept: await resumed.files.read('/home/user/kept.txt') };
    });
  } finally {
    out.killSandbox = await sbx.kill();
    out.killAgain = await Sandbox.kill(sbx.sandboxId);
  }
  await attempt('afterKill', () => Sandbox.connect(out.sandboxId));
}

if (scenario === 'network') {
  const { Sandbox, Secret } = await import(sdk);
  const publicHost = process.env.TESTNET_PUBLIC;
  const name = process.env.TESTNET_NAME;
  const curl = (sbx, url) => sbx.commands.run(`curl -sS --max-time 15 ${url} 2>&1; echo " exit=$?"`).then((r) => r.stdout.trim());
  const offline = await Sandbox.create('base', { allowInternetAccess: false, timeoutMs: 120_000 });
  try {
    await attempt('offline', () => curl(offline, `http://${publicHost}/`));
    await attempt('offlineInfo', async () => { const i = await offline.getInfo(); return { allowInternetAccess: i.allowInternetAccess ?? null }; });
    await attempt('opened', async () => {
      await offline.updateNetwork({ allowOut: [name], denyOut: ['0.0.0.0/0'] });
      return { byName: await curl(offline, `http://${name}/`), byAddress: await curl(offline, `http://${publicHost}/`) };
    });
  } finally {
    await offline.kill();
  }
  const listed = await Sandbox.create('base', { network: { allowOut: [name], denyOut: ['0.0.0.0/0'] }, timeoutMs: 120_000 });
  try {
    await attempt('allowList', async () => ({ byName: await curl(listed, `http://${name}/`), other: await curl(listed, `http://other.${name.split('.').slice(1).join('.')}/`) }));
  } finally {
    await listed.kill();
  }
  // Secrets: the SDK's own Secret API, then a header transform that fills one in on the way out.
  const secretName = `token-${sdk.replace(/[^a-z0-9]/g, '')}-${process.pid}`;
  await attempt('secretApi', async () => {
    const created = await Secret.create(secretName, process.env.TESTNET_SECRET, { metadata: { team: 'tests' } });
    const info = await Secret.getInfo(secretName);
    const page = await Secret.list({ limit: 100 }).nextItems();
    return { version: created.version, name: info.name, metadata: info.metadata, listed: page.some((x) => x.name === secretName),
      exists: await Secret.exists(secretName), missing: await Secret.exists('no-such-secret'), answers: JSON.stringify([created, info, page]) };
  });
  const rules = (prefix) => ({ [name]: [{ transform: { headers: { 'X-Api-Key': prefix + Secret.fill(secretName) } } }] });
  const ruled = await Sandbox.create('base', { network: { allowOut: [name], denyOut: ['0.0.0.0/0'], rules: rules('') }, timeoutMs: 120_000 });
  try {
    await attempt('transformRules', async () => ({
      ruled: await curl(ruled, `https://${name}/record/${process.env.TESTNET_TAG}`),
      other: await curl(ruled, `https://other.${name.split('.').slice(1).join('.')}/`),
      env: (await ruled.commands.run('env')).stdout,
      info: JSON.stringify((await ruled.getInfo())),
    }));
    await attempt('updatedRules', async () => {
      await ruled.updateNetwork({ allowOut: [name], denyOut: ['0.0.0.0/0'], rules: rules('v2 ') });
      return { ruled: await curl(ruled, `https://${name}/record/${process.env.TESTNET_TAG}-updated`) };
    });
  } finally {
    await ruled.kill();
  }
  await attempt('secretGone', async () => ({ destroyed: await Secret.destroy(secretName), again: await Secret.destroy(secretName), exists: await Secret.exists(secretName) }));
}

if (scenario === 'persistence') {
  const { Sandbox, Volume } = await import(sdk);
  const sh = (sbx, cmd) => sbx.commands.run(cmd).then((r) => r.stdout);
  const sbx = await Sandbox.create('base', { timeoutMs: 300_000 });
  try {
    await sh(sbx, 'echo original > $HOME/state');
    let snapshotId;
    await attempt('snapshot', async () => {
      const snap = await sbx.createSnapshot({ name: `suite-${sdk.replace(/[^a-z0-9]/g, '')}-${process.pid}` });
      snapshotId = snap.snapshotId;
      const listed = await Sandbox.listSnapshots({ sandboxId: sbx.sandboxId }).nextItems();
      const mine = await sbx.listSnapshots().nextItems();
      return { snapshotId, names: snap.names, listed: listed.some((s) => s.snapshotId === snapshotId), mine: mine.length };
    });
    await attempt('fromSnapshot', async () => {
      const copy = await Sandbox.create(snapshotId, { timeoutMs: 120_000 });
      try {
        await sh(copy, 'echo changed > $HOME/state');
        return { copy: await sh(copy, 'cat $HOME/state'), original: await sh(sbx, 'cat $HOME/state') };
      } finally {
        await copy.kill();
      }
    });
    await attempt('deleteSnapshot', async () => ({ deleted: await Sandbox.deleteSnapshot(snapshotId) }));
    await attempt('fork', async () => {
      const forks = await sbx.fork({ count: 2 });
      try {
        const ids = forks.map((f) => f.sandboxId);
        await sh(forks[0], 'echo fork0 > $HOME/state');
        return { count: forks.length, distinct: new Set([...ids, sbx.sandboxId]).size, first: await sh(forks[0], 'cat $HOME/state'), second: await sh(forks[1], 'cat $HOME/state') };
      } finally {
        for (const f of forks) await f.kill();
      }
    });
    await attempt('pauseWithMemory', async () => {
      await sbx.commands.run('sleep 3600', { background: true });
      await sbx.pause();
      const paused = (await Sandbox.getInfo(sbx.sandboxId)).state;
      const back = await Sandbox.connect(sbx.sandboxId);
      return { paused, sleeping: (await sh(back, 'ps -eo args | grep -c "^[s]leep 3600"')).trim() };
    });
    await attempt('pauseWithoutMemory', async () => {
      await sbx.pause({ keepMemory: false });
      const paused = (await Sandbox.getInfo(sbx.sandboxId)).state;
      const back = await Sandbox.connect(sbx.sandboxId);
      return { paused, file: await sh(back, 'cat $HOME/state'), sleeping: (await sh(back, 'ps -eo args | grep -c "^[s]leep 3600" || true')).trim() };
    });
  } finally {
    await sbx.kill();
  }
  await attempt('autoPause', async () => {
    const auto = await Sandbox.create('base', { timeoutMs: 2_000, lifecycle: { onTimeout: 'pause', autoResume: true } });
    await sh(auto, 'echo kept > $HOME/f');
    const info = await auto.getInfo();
    let state = info.state;
    for (let i = 0; i < 100 && state !== 'paused'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await Sandbox.getInfo(auto.sandboxId)).state;
    }
    const file = await sh(auto, 'cat $HOME/f');
    const after = (await Sandbox.getInfo(auto.sandboxId)).state;
    await auto.kill();
    return { lifecycle: info.lifecycle ?? null, state, file, after };
  });
  await attempt('volume', async () => {
    const name = `vol${sdk.replace(/[^a-z0-9]/g, '')}${process.pid}`;
    const vol = await Volume.create(name);
    try {
      const writer = await Sandbox.create('base', { volumeMounts: { '/data': vol }, timeoutMs: 120_000 });
      await sh(writer, 'echo from-sandbox > /data/note');
      await writer.kill();
      await vol.writeFile('/dir/api.txt', 'from-api');
      const reader = await Sandbox.create('base', { volumeMounts: { '/mnt/v': name }, timeoutMs: 120_000 });
      const inSandbox = await sh(reader, 'cat /mnt/v/note /mnt/v/dir/api.txt');
      const info = await reader.getInfo();
      await reader.kill();
      const connected = await Volume.connect(vol.volumeId);
      return {
        inSandbox,
        viaApi: await connected.readFile('/note'),
        entries: (await connected.list('/')).map((e) => `${e.type}:${e.name}`).sort(),
        stat: (await connected.getInfo('/dir/api.txt')).size,
        listed: (await Volume.list()).some((v) => v.name === name),
        mounts: JSON.stringify(info.volumeMounts ?? null),
      };
    } finally {
      await vol.remove('/dir').catch(() => {});
      await Volume.destroy(vol.volumeId);
    }
  });
}

if (scenario === 'code') {
  const { Sandbox } = await import('@e2b/code-interpreter');
  const sbx = await Sandbox.create({ timeoutMs: 300_000 });
  try {
    await attempt('state', async () => {
      await sbx.runCode('x = 41');
      const r = await sbx.runCode('x + 1');
      return { text: r.text, results: r.results.length, executionCount: r.executionCount };
    });
    await attempt('logs', async () => {
      const stdout = [];
      const r = await sbx.runCode('import sys\nprint("to stdout")\nprint("to stderr", file=sys.stderr)', { onStdout: (m) => stdout.push(m.line) });
      return { stdout: r.logs.stdout, stderr: r.logs.stderr, callback: stdout };
    });
    await attempt('chart', async () => {
      const r = await sbx.runCode('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [2, 4, 8])\nplt.show()');
      const png = r.results.find((x) => x.png)?.png;
      const bytes = png ? Buffer.from(png, 'base64') : Buffer.alloc(0);
      return { formats: r.results.map((x) => x.formats()), signature: bytes.subarray(0, 8).toString('hex'), length: bytes.length };
    });
    await attempt('dataframe', async () => {
      const r = await sbx.runCode('import pandas as pd\npd.DataFrame({"a": [1, 2]})');
      return { html: (r.results[0]?.html ?? '').includes('<table'), text: r.text };
    });
    await attempt('error', async () => {
      const r = await sbx.runCode('1 / 0');
      return { name: r.error?.name, value: r.error?.value, traceback: r.error?.traceback };
    });
    await attempt('afterError', async () => (await sbx.runCode('x')).text);
    await attempt('envs', async () => {
      const during = (await sbx.runCode('import os\nos.environ.get("ONLY_NOW", "unset")', { envs: { ONLY_NOW: 'set' } })).text;
      const after = (await sbx.runCode('os.environ.get("ONLY_NOW", "unset")')).text;
      return { during, after };
    });
    await attempt('js', async () => {
      const ctx = await sbx.createCodeContext({ language: 'js' });
      await sbx.runCode('let n = 20', { context: ctx });
      const r = await sbx.runCode('n + 1', { context: ctx });
      return { language: ctx.language, text: r.text };
    });
    await attempt('restart', async () => {
      const ctx = await sbx.createCodeContext({ language: 'python' });
      await sbx.runCode('before_restart = 1', { context: ctx });
      await sbx.restartCodeContext(ctx);
      const r = await sbx.runCode('"before_restart" in globals()', { context: ctx });
      return r.text;
    });
    await attempt('contexts', async () => {
      const ctx = await sbx.createCodeContext({ language: 'python', cwd: '/tmp' });
      const r = await sbx.runCode('import os\nos.getcwd()', { context: ctx });
      const listed = (await sbx.listCodeContexts()).map((c) => c.id);
      await sbx.removeCodeContext(ctx);
      const after = (await sbx.listCodeContexts()).map((c) => c.id);
      return { cwd: r.text, listed: listed.includes(ctx.id), removed: !after.includes(ctx.id) };
    });
    // Data analysis as in E2B's cookbook: upload a CSV, analyse it with pandas, chart it, download the chart.
    await attempt('analysis', async () => {
      await sbx.files.write('/home/user/sales.csv', 'month,units\nJan,12\nFeb,19\nMar,31\n');
      const r = await sbx.runCode(
        'import pandas as pd, matplotlib.pyplot as plt\n' +
        'df = pd.read_csv("/home/user/sales.csv")\n' +
        'df.plot(x="month", y="units", kind="bar")\n' +
        'plt.savefig("/home/user/sales.png")\n' +
        'int(df.units.sum())');
      const png = await sbx.files.read('/home/user/sales.png', { format: 'bytes' });
      return { total: r.text, charts: r.results.filter((x) => x.png).length, savedSignature: Buffer.from(png.subarray(0, 8)).toString('hex') };
    });
    // An agent loop as in E2B's cookbook: the model writes a program, runs it, reads what it printed.
    await attempt('agentLoop', async () => {
      await sbx.files.write('/home/user/job.py', 'import json\nprint(json.dumps({"sum": sum(range(10))}))\n');
      const run = await sbx.commands.run('python3 /home/user/job.py > /home/user/out.json');
      const text = await sbx.files.read('/home/user/out.json');
      return { exitCode: run.exitCode, result: JSON.parse(text) };
    });
  } finally {
    out.killSandbox = await sbx.kill();
  }
}

if (scenario === 'templates') {
  const { Template, Sandbox, waitForURL } = await import(sdk);
  const fs = await import('node:fs');
  const path = await import('node:path');
  const os = await import('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2b-template-'));
  fs.mkdirSync(path.join(dir, 'site'));
  fs.writeFileSync(path.join(dir, 'site', 'index.html'), 'hello from a template\n');
  fs.writeFileSync(path.join(dir, 'site', 'debug.log'), 'left out by .dockerignore\n');
  fs.writeFileSync(path.join(dir, '.dockerignore'), 'site/*.log\n');
  const name = `tpl-${process.pid}`;
  const template = () => Template({ fileContextPath: dir })
    .fromBaseImage()
    .copy('site', '/srv/site')
    .setEnvs({ GREETING: 'hi from the template' })
    .runCmd('echo built > /srv/site/built.txt')
    .setWorkdir('/srv/site')
    .setStartCmd('python3 -m http.server 8080', waitForURL('http://127.0.0.1:8080/built.txt'));
  const build = async (tpl, as) => {
    const logs = [];
    const started = Date.now();
    const info = await Template.build(tpl, as, { onBuildLogs: (l) => logs.push(`${l.level} ${l.message}`) });
    return { name: info.name, templateId: info.templateId, ms: Date.now() - started, logs };
  };
  await attempt('build', () => build(template(), name));
  await attempt('exists', async () => [await Template.exists(name), await Template.exists(`no-such-${process.pid}`)]);
  await attempt('sandbox', async () => {
    const started = Date.now();
    const sbx = await Sandbox.create(name, { timeoutMs: 120_000 });
    try {
      // The first request, at once: the start command's server is up when create returns.
      const r = await sbx.commands.run('curl -s http://127.0.0.1:8080/built.txt; cat /srv/site/index.html; echo "$GREETING"; ls /srv/site');
      return { stdout: r.stdout, ms: Date.now() - started };
    } finally {
      await sbx.kill();
    }
  });
  await attempt('rebuild', () => build(template(), name));
  await attempt('fromDockerfile', async () => {
    const info = await build(Template({ fileContextPath: dir }).fromDockerfile('FROM default\nRUN echo from-dockerfile > /df.txt\nENV MODE=dockerfile\n'), `${name}-df`);
    const sbx = await Sandbox.create(`${name}-df`, { timeoutMs: 60_000 });
    try {
      return { logs: info.logs, stdout: (await sbx.commands.run('cat /df.txt; echo $MODE')).stdout };
    } finally {
      await sbx.kill();
    }
  });
  await attempt('failing', () => build(Template().fromBaseImage().runCmd('echo about to fail; exit 3'), `${name}-fails`));

  // @e2b/cli's template commands, run as a user runs them (E2B_API_KEY and E2B_API_URL pointing at Cordon).
  const { spawnSync } = await import('node:child_process');
  const cli = (...args) => {
    const r = spawnSync(process.execPath, [path.join(import.meta.dirname, 'node_modules', '@e2b', 'cli', 'dist', 'index.js'), ...args],
      { env: { ...process.env, NO_UPDATE_NOTIFIER: '1' }, encoding: 'utf8', timeout: 300_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const cliDir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2b-cli-'));
  fs.writeFileSync(path.join(cliDir, 'e2b.Dockerfile'), 'FROM default\nRUN echo from-the-cli > /cli.txt\n');
  await attempt('cli', async () => {
    const cliName = `${name}-cli`;
    const created = cli('template', 'create', cliName, '-p', cliDir, '-c', 'sleep infinity', '--ready-cmd', 'test -f /cli.txt');
    const listed = cli('template', 'list', '-f', 'json');
    const sbx = await Sandbox.create(cliName, { timeoutMs: 60_000 });
    let inside;
    try {
      inside = (await sbx.commands.run('cat /cli.txt')).stdout;
    } finally {
      await sbx.kill();
    }
    const deleted = cli('template', 'delete', cliName, '-y');
    const after = cli('template', 'list', '-f', 'json');
    const names = (r) => { try { return JSON.parse(r.stdout).map((t) => t.aliases[0]); } catch { return r.stdout + r.stderr; } };
    return { created: created.status, createdOut: created.stderr.slice(-500), listed: names(listed), inside, deleted: deleted.status, after: names(after) };
  });
}

console.log(JSON.stringify(out));
