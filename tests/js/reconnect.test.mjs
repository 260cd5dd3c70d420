// The engine is SIGKILLed and restarted on the same data dir and port: the
// clients reconnect by themselves, resend what was not acked with the same
// cmid, and end with every message exactly once, in order.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { IMClient, dmId } from '../../examples/web/imclient.js';
import { startEngine, restartEngine, tempDir, waitFor, memoryStorage, collect } from './helpers.mjs';

let engine;
let tmp;
const clients = [];

before(async () => {
  tmp = tempDir();
  engine = await startEngine({ data: tmp.dir });
});

after(async () => {
  for (const c of clients) c.close();
  await engine?.stop();
  tmp?.cleanup();
});

function client(user, storage = memoryStorage()) {
  const c = new IMClient({ url: engine.url, user, device: 'd1', storage, backoffBaseMs: 50, backoffMaxMs: 400, ackDelayMs: 20 });
  clients.push(c);
  return c;
}

async function killAndRestart() {
  await engine.kill();
  return async () => {
    engine = await restartEngine(engine, { data: tmp.dir });
  };
}

test('SIGKILL mid-stream: unacked sends resent, nothing lost or duplicated, in order', async () => {
  const conv = dmId('alice', 'bob');
  const a = client('alice');
  const b = client('bob');
  await Promise.all([a.connect(), b.connect()]);
  const bobMsgs = collect(b, 'msg');
  const bodies = Array.from({ length: 30 }, (_, i) => `m${String(i).padStart(2, '0')}`);
  const acks = new Array(30);
  const track = (i, p) => p.then(ack => (acks[i] = ack));

  for (let i = 0; i < 10; i++) await track(i, a.send(conv, bodies[i]));
  // Ten pipelined, and the engine dies as soon as the first is acked: the
  // others may be committed-but-unacked or not written at all.
  const inFlight = bodies.slice(10, 20).map((body, k) => track(10 + k, a.send(conv, body)));
  await inFlight[0];
  const restart = await killAndRestart();
  await waitFor(() => a.state === 'offline' && b.state === 'offline', { what: 'both clients offline' });
  // Sent while the engine is down: kept in the outbox.
  const queued = bodies.slice(20).map((body, k) => track(20 + k, a.send(conv, body)));
  assert.ok(a.pending().length >= 10);
  await restart();

  await Promise.all([...inFlight, ...queued]);
  assert.deepEqual(acks.map(x => x.seq), bodies.map((_, i) => i + 1), 'acks in the order sent');
  assert.deepEqual(a.pending(), []);

  const h = await a.history(conv, { after: 0, limit: 100 });
  assert.deepEqual(h.msgs.map(m => m.body), bodies, 'the timeline holds each once, in order');
  await waitFor(() => bobMsgs.length >= 30, { what: 'bob has all 30', timeoutMs: 15000 });
  assert.deepEqual(bobMsgs.map(m => m.body), bodies, 'bob saw each once, in order');
});

test('a page reload while the engine is down keeps the typed message; it is sent once later', async () => {
  const conv = dmId('carol', 'dave');
  const storage = memoryStorage();
  const first = client('carol', storage);
  await first.connect();
  await first.send(conv, 'before');
  const restart = await killAndRestart();
  await waitFor(() => first.state === 'offline', { what: 'offline' });
  first.send(conv, 'typed while down').catch(() => {}); // this page goes away
  first.close(); // the "reload"
  await restart();

  const reloaded = client('carol', storage);
  assert.deepEqual(reloaded.pending().map(p => p.body), ['typed while down']);
  const sent = collect(reloaded, 'sent');
  await reloaded.connect();
  await waitFor(() => sent.length === 1, { what: 'the stored send acked' });
  assert.equal(sent[0].ack.seq, 2);
  const h = await reloaded.history(conv, { after: 0 });
  assert.deepEqual(h.msgs.map(m => m.body), ['before', 'typed while down']);
});
