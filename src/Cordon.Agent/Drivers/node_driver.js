// Cordon code-context driver for JavaScript and TypeScript on Node.js.
// The agent starts it with the context's channel on fd 3: newline-delimited JSON both ways.
//   agent -> driver: {"op": "run", "code": "..."}      (interrupts arrive as SIGINT)
//   driver -> agent: {"type": "ready", ...} then per run: stdout | stderr | result | error ... end
// Usage: node -e <this file> <javascript|typescript>
'use strict';
const net = require('net');
const util = require('util');
const vm = require('vm');
const path = require('path');
const { createRequire } = require('module');

const language = process.argv[process.argv.length - 1] === 'typescript' ? 'typescript' : 'javascript';
const channel = new net.Socket({ fd: 3, readable: true, writable: true });
const send = (event) => channel.write(JSON.stringify(event) + '\n');

// Everything the code prints goes to the run it belongs to.
const forward = (type) => (chunk, encoding, callback) => {
  send({ type, text: typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8') });
  if (typeof encoding === 'function') encoding();
  else if (typeof callback === 'function') callback();
  return true;
};
process.stdout.write = forward('stdout');
process.stderr.write = forward('stderr');

// State lives in this process's global scope, as in Node's own REPL.
globalThis.require = createRequire(path.join(process.cwd(), 'cordon-context.js'));
globalThis.module = { exports: {}, require: globalThis.require };
globalThis.exports = globalThis.module.exports;
globalThis.__dirname = process.cwd();
globalThis.__filename = path.join(process.cwd(), 'cordon-context.js');

function optional(name) {
  try {
    return require(name);
  } catch {
    return null;
  }
}

const acorn = optional('acorn');
const typescript = language === 'typescript' ? optional('typescript') : null;
if (language === 'typescript' && typescript === null) {
  send({ type: 'failed', value: "TypeScript needs the 'typescript' package in the image (Debian: node-typescript, or npm install -g typescript)" });
  process.exit(2);
}

function transpile(code) {
  if (typescript === null) return code;
  return typescript.transpileModule(code, {
    compilerOptions: { target: typescript.ScriptTarget.ES2022, module: typescript.ModuleKind.CommonJS, esModuleInterop: true },
    reportDiagnostics: false,
  }).outputText.replace(/^"use strict";\s*/, '');
}

// Top-level await: run the cell as an async function whose top-level declarations become globals
// (so the next cell sees them) and whose last expression is returned, the way Node's REPL does.
function asAsync(code) {
  if (acorn === null) return `(async () => {\n${code}\n})()`;
  const tree = acorn.parse(code, { ecmaVersion: 'latest', sourceType: 'script', allowAwaitOutsideFunction: true });
  const names = new Set();
  const edits = [];
  const collect = (pattern) => {
    if (!pattern) return;
    if (pattern.type === 'Identifier') names.add(pattern.name);
    else if (pattern.type === 'ObjectPattern') pattern.properties.forEach((p) => collect(p.type === 'RestElement' ? p.argument : p.value));
    else if (pattern.type === 'ArrayPattern') pattern.elements.forEach(collect);
    else if (pattern.type === 'AssignmentPattern') collect(pattern.left);
    else if (pattern.type === 'RestElement') collect(pattern.argument);
  };
  tree.body.forEach((node, index) => {
    const last = index === tree.body.length - 1;
    if (node.type === 'VariableDeclaration') {
      node.declarations.forEach((d) => collect(d.id));
      const assignments = node.declarations.filter((d) => d.init).map((d) => `(${code.slice(d.id.start, d.id.end)} = ${code.slice(d.init.start, d.init.end)})`);
      edits.push([node.start, node.end, assignments.length ? `void (${assignments.join(', ')});` : ';']);
    } else if ((node.type === 'FunctionDeclaration' || node.type === 'ClassDeclaration') && node.id) {
      names.add(node.id.name);
      edits.push([node.start, node.end, `${node.id.name} = ${code.slice(node.start, node.end)};`]);
    } else if (last && node.type === 'ExpressionStatement') {
      edits.push([node.start, node.end, `return (${code.slice(node.expression.start, node.expression.end)});`]);
    }
  });
  let body = code;
  for (const [start, end, text] of edits.sort((a, b) => b[0] - a[0])) body = body.slice(0, start) + text + body.slice(end);
  const declare = names.size ? `var ${[...names].join(', ')};\n` : '';
  return `${declare}(async () => {\n${body}\n})()`;
}

let current = null; // { interrupt(error) } while a run is in progress
let count = 0;

function display(value) {
  const data = { 'text/plain': util.inspect(value, { depth: 4, colors: false, maxArrayLength: 200 }) };
  if (value !== null && typeof value === 'object') {
    try {
      data['application/json'] = JSON.parse(JSON.stringify(value));
    } catch {
      // Not representable as JSON (cycles, BigInt): text only.
    }
  }
  return data;
}

function report(error) {
  const isError = error instanceof Error || (error && typeof error === 'object' && 'stack' in error);
  send({
    type: 'error',
    name: isError ? error.name : 'Error',
    value: isError ? error.message : util.inspect(error),
    // The driver's own frames say nothing about the user's code.
    traceback: isError && typeof error.stack === 'string'
      ? error.stack.split('\n').filter((line) => !/\(node:|\[eval\]|node:internal|sigintHandlersWrap/.test(line))
      : [],
  });
}

async function run(code, env) {
  count += 1;
  let status = 'ok';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    let source = transpile(code);
    let script;
    try {
      script = new vm.Script(source, { filename: `cell${count}` });
    } catch (error) {
      if (!(error instanceof SyntaxError) || !/\bawait\b/.test(source)) throw error;
      script = new vm.Script(asAsync(source), { filename: `cell${count}` });
    }
    let value = script.runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (value instanceof Promise || (value && typeof value.then === 'function')) {
      value = await new Promise((resolve, reject) => {
        current = { interrupt: reject };
        Promise.resolve(value).then(resolve, reject);
      });
    }
    if (value !== undefined) {
      send({ type: 'result', data: display(value), isMainResult: true, executionCount: count });
    }
  } catch (error) {
    const interrupted = error && error.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED';
    status = interrupted ? 'interrupted' : 'error';
    if (interrupted) error.name = 'KeyboardInterrupt';
    report(error);
  } finally {
    current = null;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  send({ type: 'end', status, executionCount: count });
}

// SIGINT interrupts synchronous code through breakOnSigint; here it ends a run that waits on a promise.
process.on('SIGINT', () => {
  if (current) {
    const error = new Error('Execution interrupted');
    error.name = 'KeyboardInterrupt';
    error.code = 'ERR_SCRIPT_EXECUTION_INTERRUPTED';
    current.interrupt(error);
  }
});

// A callback that throws later must not take the context with it.
process.on('uncaughtException', (error) => send({ type: 'stderr', text: `Uncaught ${util.inspect(error)}\n` }));
process.on('unhandledRejection', (error) => send({ type: 'stderr', text: `Unhandled promise rejection: ${util.inspect(error)}\n` }));

let queue = Promise.resolve();
let buffered = '';
channel.setEncoding('utf8');
channel.on('data', (chunk) => {
  buffered += chunk;
  let newline;
  while ((newline = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, newline);
    buffered = buffered.slice(newline + 1);
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.op === 'run') queue = queue.then(() => run(String(request.code ?? ''), request.env ?? {}));
  }
});
channel.on('end', () => process.exit(0));
send({ type: 'ready', kernel: null, language, interrupt: 'signal' });
