// Client-only checks with a fake socket (no engine): reconnect backoff is
// exponential, jittered and capped; dm ids are formed as the protocol says.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IMClient, dmId, dmPeer, convKind } from '../../examples/web/imclient.js';
import { waitFor, memoryStorage } from './helpers.mjs';

/** A socket whose connection always fails, as against a port nobody listens on. */
class RefusedSocket {
  static made = 0;
  constructor() {
    RefusedSocket.made++;
    setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 0);
  }
  send() {
    throw new Error('not open');
  }
  close() {}
}

test('reconnect delays grow exponentially with jitter, up to the cap', async () => {
  const base = 2;
  const max = 32;
  const c = new IMClient({ url: 'ws://127.0.0.1:1/ws', user: 'u', device: 'd', WebSocket: RefusedSocket, storage: memoryStorage(), backoffBaseMs: base, backoffMaxMs: max });
  const delays = [];
  c.on('state', s => s.state === 'offline' && delays.push(s.retryInMs));
  c.connect().catch(() => {});
  await waitFor(() => delays.length >= 10, { what: 'ten reconnect attempts' });
  c.close();
  delays.slice(0, 10).forEach((d, n) => {
    const cap = Math.min(max, base * 2 ** n);
    assert.ok(d >= Math.floor(cap / 2) && d <= cap, `attempt ${n}: ${d} ms within [${cap / 2}, ${cap}]`);
  });
  assert.ok(delays.slice(6, 10).every(d => d <= max), 'capped');
  const made = RefusedSocket.made;
  assert.equal(c.state, 'closed');
  await new Promise(r => setTimeout(r, 3 * max)); // would-be retries after close() (a bounded wait for an absence)
  assert.equal(RefusedSocket.made, made, 'no reconnect after close()');
});

test('requests made while offline time out with code timeout', async () => {
  const c = new IMClient({ url: 'ws://127.0.0.1:1/ws', user: 'u', device: 'd2', WebSocket: RefusedSocket, storage: memoryStorage(), backoffBaseMs: 5, backoffMaxMs: 20, requestTimeoutMs: 50 });
  c.connect().catch(() => {});
  await assert.rejects(c.convs(), { code: 'timeout' });
  // A send is kept (and persisted) instead: it has no deadline of its own.
  const storage = c._store;
  c.send('dm:a:u', 'kept').catch(() => {});
  assert.deepEqual(JSON.parse(storage.get('imclient:u:d2:outbox')).map(i => i.body), ['kept']);
  await assert.rejects(c.send('dm:a:u', 'bounded', { timeoutMs: 30 }), e => e.code === 'timeout' && e.pending === true);
  c.close();
});

test('dm ids: sorted bytewise; peer and kind helpers', () => {
  assert.equal(dmId('bob', 'alice'), 'dm:alice:bob');
  assert.equal(dmId('alice', 'bob'), 'dm:alice:bob');
  assert.equal(dmId('Zed', 'alice'), 'dm:Zed:alice'); // 'Z' < 'a' bytewise
  assert.equal(dmId('a.b', 'a-b'), 'dm:a-b:a.b');
  assert.throws(() => dmId('alice', 'alice'));
  assert.equal(dmPeer('dm:alice:bob', 'alice'), 'bob');
  assert.equal(dmPeer('dm:alice:bob', 'bob'), 'alice');
  assert.equal(dmPeer('g:team', 'bob'), null);
  assert.deepEqual(['dm:a:b', 'g:x', 'r:y', 'x'].map(convKind), ['dm', 'group', 'room', null]);
});
