// Drives a Cordon MCP endpoint with the official TypeScript SDK and prints what it saw as one JSON document;
// tests/Cordon.Server.Tests/McpTests.cs asserts on it. Usage:
//   node client.mjs http <url> <key>
//   node client.mjs stdio <url> <key> <path to cordon>
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [mode, url, key, cordon] = process.argv.slice(2);

// The extension entries come from the README's Goose section when the test passes them (MCP_GOOSE_*), so
// what the README tells Goose users is exactly what is tested.
function transport() {
  if (mode === 'stdio') {
    return new StdioClientTransport({
      command: process.env.MCP_GOOSE_CMD ?? cordon,
      args: process.env.MCP_GOOSE_ARGS ? JSON.parse(process.env.MCP_GOOSE_ARGS) : ['mcp'],
      env: { ...process.env, CORDON_URL: url, CORDON_API_KEY: key },
      stderr: 'inherit',
    });
  }
  return new StreamableHTTPClientTransport(new URL(process.env.MCP_GOOSE_URI ?? new URL('/mcp', url).toString()), {
    requestInit: { headers: { Authorization: process.env.MCP_GOOSE_AUTHORIZATION ?? `Bearer ${key}` } },
  });
}

let negotiated = null;

async function connect() {
  const client = new Client({ name: 'cordon-tests', version: '1.0.0' });
  const t = transport();
  // The client hands the negotiated revision to transports that want it; record it for either transport.
  const set = t.setProtocolVersion?.bind(t);
  t.setProtocolVersion = (version) => {
    negotiated = version;
    set?.(version);
  };
  await client.connect(t);
  return client;
}

// A tool result, reduced to what the assertions need (images keep their type and decoded length).
function shape(result) {
  return {
    isError: result.isError ?? false,
    text: result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
    images: result.content
      .filter((c) => c.type === 'image')
      .map((c) => {
        const bytes = Buffer.from(c.data, 'base64');
        return { mimeType: c.mimeType, bytes: bytes.length, signature: bytes.subarray(0, 8).toString('hex') };
      }),
    structured: result.structuredContent ?? null,
  };
}

async function call(client, name, args, meta) {
  try {
    return shape(await client.callTool({ name, arguments: args, ...(meta ? { _meta: meta } : {}) }));
  } catch (error) {
    return { protocolError: String(error.message ?? error) };
  }
}

const out = {};
const first = await connect();
out.protocolVersion = negotiated;
out.serverInfo = first.getServerVersion();
out.instructions = first.getInstructions() ?? null;
const tools = (await first.listTools()).tools;
out.tools = tools.map((t) => ({ name: t.name, annotations: t.annotations ?? null, required: t.inputSchema?.required ?? [], hasOutputSchema: !!t.outputSchema }));

out.command = await call(first, 'run_command', { command: 'echo hello; echo oops >&2; exit 3' });
out.argv = await call(first, 'run_command', { argv: ['printf', '%s-%s', 'a b', 'c'] });
out.write = await call(first, 'write_file', { path: '/tmp/mcp/notes.txt', content: 'alpha\nbeta\ngamma\n' });
out.edit = await call(first, 'edit_file', { path: '/tmp/mcp/notes.txt', oldText: 'beta', newText: 'BETA' });
out.read = await call(first, 'read_file', { path: '/tmp/mcp/notes.txt' });
out.list = await call(first, 'list_files', { path: '/tmp/mcp' });
out.move = await call(first, 'move', { from: '/tmp/mcp/notes.txt', to: '/tmp/mcp/renamed.txt' });
out.mkdir = await call(first, 'make_dir', { path: '/tmp/mcp/sub/dir' });
out.remove = await call(first, 'remove', { path: '/tmp/mcp/sub' });
out.listAfter = await call(first, 'list_files', { path: '/tmp/mcp' });
out.codeSet = await call(first, 'run_code', { code: 'x = 21\nprint("set")' });
out.codeGet = await call(first, 'run_code', { code: 'x * 2' });
out.chart = await call(first, 'run_code', { code: 'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title("squares")' });
out.codeError = await call(first, 'run_code', { code: '1/0' });
out.js = await call(first, 'run_code', { code: 'const y = 5; y * 3', language: 'javascript' });
out.big = await call(first, 'run_command', { command: 'seq 1 100000' });
if (out.big.structured) {
  out.bigPage = await call(first, 'read_command_output', { handle: out.big.structured.handle, stdoutCursor: 300000 });
}
out.background = await call(first, 'run_command', { command: 'for i in 1 2 3; do echo line$i; sleep 0.2; done', background: true });
if (out.background.structured) {
  out.waited = await call(first, 'wait_command', { handle: out.background.structured.handle, timeoutSeconds: 30 });
}
out.cat = await call(first, 'run_command', { command: 'cat', background: true });
if (out.cat.structured) {
  out.catInput = await call(first, 'write_command_input', { handle: out.cat.structured.handle, data: 'typed\n', close: true });
  out.catWaited = await call(first, 'wait_command', { handle: out.cat.structured.handle, timeoutSeconds: 30 });
}
out.sleeper = await call(first, 'run_command', { command: 'sleep 300', background: true });
if (out.sleeper.structured) {
  out.signal = await call(first, 'signal_command', { handle: out.sleeper.structured.handle, signal: 'KILL' });
  out.sleeperWaited = await call(first, 'wait_command', { handle: out.sleeper.structured.handle, timeoutSeconds: 30 });
}

// Progress while a command runs (the client asked for it), and cancellation that stops the command.
const progress = [];
out.progressed = shape(await first.callTool(
  { name: 'run_command', arguments: { command: 'for i in 1 2 3; do echo tick$i; sleep 0.3; done' } },
  undefined,
  { onprogress: (p) => progress.push(p.message ?? '') },
));
out.progress = progress;
const abort = new AbortController();
setTimeout(() => abort.abort(), 1500);
try {
  await first.callTool({ name: 'run_command', arguments: { command: 'sleep 120 # cancelme' } }, undefined, { signal: abort.signal });
  out.cancelled = 'completed';
} catch (error) {
  out.cancelled = `${error.name}: ${error.message}`;
}
await new Promise((r) => setTimeout(r, 1000));
out.afterCancel = await call(first, 'run_command', { command: 'ps -eo args | grep -c "[s]leep 120" || true' });

// Errors are tool errors that say what to do; the server goes on.
out.unknownSandbox = await call(first, 'run_command', { command: 'true', sandboxId: 'nosuchsandbox0000000' });
out.neither = await call(first, 'run_command', {});
out.badPath = await call(first, 'read_file', { path: 'relative/path' });
out.missingFile = await call(first, 'read_file', { path: '/does/not/exist' });
out.badType = await call(first, 'run_command', { command: 'true', timeoutSeconds: 'soon' });
out.unknownHandle = await call(first, 'read_command_output', { handle: 'cmd-000000000000' });
out.afterErrors = await call(first, 'run_command', { command: 'echo still here' });

// Session binding: a second MCP session gets its own sandbox; the agent session in _meta wins over both.
out.firstSandbox = (await call(first, 'list_sandboxes', {})).structured?.sessionSandboxId ?? null;
const second = await connect();
out.otherSession = await call(second, 'run_command', { command: 'cat /tmp/mcp/renamed.txt' });
out.secondSandbox = (await call(second, 'list_sandboxes', {})).structured?.sessionSandboxId ?? null;
const agent = { 'agent-session-id': `goose-${process.pid}` };
out.agentWrite = await call(first, 'write_file', { path: '/tmp/agent.txt', content: 'shared by the agent session' }, agent);
out.agentRead = await call(second, 'read_file', { path: '/tmp/agent.txt' }, agent);
out.agentSandbox = (await call(second, 'list_sandboxes', {}, agent)).structured?.sessionSandboxId ?? null;

// A sandbox that may reach one name only (the tests' own internet names it in TESTNET_NAME).
const third = await connect();
out.netCreate = await call(third, 'create_sandbox', { allowDomains: [process.env.TESTNET_NAME] });
out.netByName = await call(third, 'run_command', { command: `curl -sS --max-time 15 http://${process.env.TESTNET_NAME}/` });
out.netOther = await call(third, 'run_command', { command: `curl -sS --max-time 15 http://${process.env.TESTNET_PUBLIC}/` });
out.netDestroy = await call(third, 'destroy_sandbox', {});
await third.close();

// Keeping the work: a snapshot of the session's sandbox, a sandbox from it, a fork, and a resume.
const snapName = `mcp-${mode}-${process.pid}`;
out.snapshot = await call(second, 'snapshot_sandbox', { name: snapName }, agent);
out.snapshots = await call(second, 'list_snapshots', {}, agent);
const fourth = await connect();
out.fromSnapshot = await call(fourth, 'create_sandbox', { snapshot: snapName });
out.fromSnapshotRead = await call(fourth, 'read_file', { path: '/tmp/agent.txt' });
out.fork = await call(second, 'fork_sandbox', { count: 2 }, agent);
const forks = out.fork.structured?.sandboxes ?? [];
out.forkRead = forks.length ? await call(second, 'read_file', { path: '/tmp/agent.txt', sandboxId: forks[0].id }) : null;
out.resume = forks.length ? await call(second, 'resume_sandbox', { sandboxId: forks[0].id }) : null;
for (const f of forks) await call(second, 'destroy_sandbox', { sandboxId: f.id });
out.fromSnapshotDestroy = await call(fourth, 'destroy_sandbox', {});
await fourth.close();

out.destroyAgent = await call(second, 'destroy_sandbox', {}, agent);
out.destroySecond = await call(second, 'destroy_sandbox', {});
out.destroyFirst = await call(first, 'destroy_sandbox', {});
out.destroyAgain = await call(first, 'destroy_sandbox', { sandboxId: out.firstSandbox });
out.listAfterDestroy = await call(first, 'list_sandboxes', {});

await second.close();
await first.close();
console.log(JSON.stringify(out));
