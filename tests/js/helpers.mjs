// Test helpers: the real engine as a child process, conditions with deadlines,
// a storage object, and a WebSocket wrapper that records and can drop frames.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The build puts the binary at build/engine/imengine.
export const ENGINE_BIN = resolve(ROOT, process.env.IMENGINE_BIN || 'build/engine/imengine');

if (typeof globalThis.WebSocket !== 'function') {
  throw new Error('no global WebSocket: run node with --experimental-websocket (Node 20) or Node >= 22');
}

/** Poll `cond` until it returns a truthy value; fail after `timeoutMs` naming `what`. */
export async function waitFor(cond, { timeoutMs = 10000, what = 'condition', everyMs = 10 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await cond();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last?.message ?? JSON.stringify(last)})`);
    await new Promise(r => setTimeout(r, everyMs));
  }
}

/** A fresh data dir, removed by the returned cleanup. */
export function tempDir(prefix = 'imengine-js-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Start the engine on 127.0.0.1 and resolve once it prints its listening
 * line. `port` 0 picks a free one; pass the old port to restart in place.
 */
export function startEngine({ data, port = 0, args = [], timeoutMs = 20000 } = {}) {
  if (!existsSync(ENGINE_BIN)) throw new Error(`engine binary not found: ${ENGINE_BIN} (set IMENGINE_BIN)`);
  const proc = spawn(ENGINE_BIN, [`--port=${port}`, '--host=127.0.0.1', `--data=${data}`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', d => (err = (err + d).slice(-4000)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`engine did not start in ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    proc.on('exit', code => {
      clearTimeout(timer);
      reject(new Error(`engine exited with ${code} before listening; stderr: ${err}`));
    });
    proc.stdout.on('data', d => {
      out += d;
      const m = /imengine listening on ws:\/\/([^:/\s]+):(\d+)\/ws/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.removeAllListeners('exit');
      const engine = {
        proc,
        host: m[1],
        port: Number(m[2]),
        url: `ws://127.0.0.1:${m[2]}/ws`,
        http: `http://127.0.0.1:${m[2]}`,
        stderr: () => err,
        exited: new Promise(r => proc.once('exit', r)),
        /** SIGKILL and wait for the process to be gone. */
        async kill() {
          if (proc.exitCode == null && proc.signalCode == null) proc.kill('SIGKILL');
          await engine.exited;
        },
        async stop() {
          if (proc.exitCode == null && proc.signalCode == null) proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
          await engine.exited;
          clearTimeout(t);
        },
      };
      resolvePromise(engine);
    });
  });
}

/** Restart on the same port: a port just freed may be briefly refused; retry a bounded number of times. */
export async function restartEngine(engine, { data, args = [] }) {
  let lastErr;
  for (let i = 0; i < 20; i++) {
    try {
      return await startEngine({ data, port: engine.port, args });
    } catch (e) {
      lastErr = e;
      await new Promise(r => setTimeout(r, 250));
    }
  }
  throw lastErr;
}

/** The {get, set} storage the client takes; `map` is inspectable by tests. */
export function memoryStorage() {
  const map = new Map();
  return { map, get: k => map.get(k), set: (k, v) => map.set(k, v) };
}

/**
 * A WebSocket constructor for the client that records every frame it sends
 * and receives, and drops incoming frames for which `drop(frame)` is true.
 * `sockets` holds every socket made, so a test can cut one.
 */
export function tapWebSocket({ drop = () => false } = {}) {
  const tap = { sent: [], received: [], dropped: [], sockets: [], drop };
  tap.WebSocket = class TapSocket {
    constructor(url) {
      const ws = new WebSocket(url);
      this.ws = ws;
      tap.sockets.push(this);
      ws.onopen = e => this.onopen?.(e);
      ws.onclose = e => this.onclose?.(e);
      ws.onerror = e => this.onerror?.(e);
      ws.onmessage = e => {
        const f = JSON.parse(e.data);
        if (tap.drop(f)) {
          tap.dropped.push(f);
          return;
        }
        tap.received.push(f);
        this.onmessage?.(e);
      };
    }
    get readyState() {
      return this.ws.readyState;
    }
    send(data) {
      tap.sent.push(JSON.parse(data));
      this.ws.send(data);
    }
    close(code, reason) {
      this.ws.close(code, reason);
    }
  };
  return tap;
}

/** Collect a client's events of one type into an array. */
export function collect(client, type) {
  const list = [];
  client.on(type, x => list.push(x));
  return list;
}

let uniq = 0;
/** A user id unique within the test process (tests share one engine). */
export function uid(name) {
  return `${name}${++uniq}${process.pid % 1000}`;
}
