// imclient.js against the real engine: sends, dedupe, chatting, gap fills,
// acks, the conversation list and error paths. One engine for the file;
// each test uses its own user names.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { IMClient, dmId } from '../../examples/web/imclient.js';
import { startEngine, tempDir, waitFor, memoryStorage, tapWebSocket, collect, uid } from './helpers.mjs';

let engine;
let tmp;
const clients = [];

before(async () => {
  tmp = tempDir();
  engine = await startEngine({ data: tmp.dir, args: ['--retransmit-ms=500'] });
});

after(async () => {
  for (const c of clients) c.close();
  await engine?.stop();
  tmp?.cleanup();
});

function client(user, opts = {}) {
  const c = new IMClient({
    url: engine.url,
    user,
    device: opts.device ?? 'd1',
    storage: opts.storage ?? memoryStorage(),
    backoffBaseMs: 50,
    backoffMaxMs: 500,
    ackDelayMs: 20,
    ...opts,
  });
  clients.push(c);
  return c;
}

test('send resolves with the ack once committed; the outbox empties', async () => {
  const alice = uid('alice');
  const storage = memoryStorage();
  const c = client(alice, { storage });
  await c.connect();
  const conv = dmId(alice, 'zed');
  const ack = await c.send(conv, 'hello');
  assert.equal(ack.t, 'ack');
  assert.equal(ack.conv, conv);
  assert.equal(ack.seq, 1);
  assert.match(ack.mid, /^\d+$/);
  assert.ok(!ack.dup);
  assert.deepEqual(c.pending(), []);
  assert.deepEqual(JSON.parse(storage.get(`imclient:${alice}:d1:outbox`)), []);
  const second = await c.send(conv, 'again', { type: 'note', ex: { k: 1 } });
  assert.equal(second.seq, 2);
  const h = await c.history(conv, { after: 0 });
  assert.deepEqual(h.msgs.map(m => [m.seq, m.body, m.type]), [[1, 'hello', 'text'], [2, 'again', 'note']]);
  assert.deepEqual(h.msgs[1].ex, { k: 1 });
});

test('a send still in the stored outbox is resent with the same cmid: dup, nothing new', async () => {
  const alice = uid('alice');
  const conv = dmId(alice, 'zed');
  const storage = memoryStorage();
  const first = client(alice, { storage });
  await first.connect();
  const ack = await first.send(conv, 'once');
  first.close();

  assert.deepEqual(JSON.parse(storage.get(`imclient:${alice}:d1:outbox`)), []); // acked: nothing left
  // A page that reloaded before the ack arrived: the item is still in storage.
  const lost = { kind: 'send', cmid: ack.cmid, conv, body: 'once', type: 'text', order: 1, ts: Date.now() };
  storage.set(`imclient:${alice}:d1:outbox`, JSON.stringify([lost]));

  const again = client(alice, { storage });
  const sent = collect(again, 'sent');
  await again.connect();
  await waitFor(() => sent.length === 1, { what: 'the resend acked' });
  assert.equal(sent[0].ack.dup, true);
  assert.equal(sent[0].ack.seq, ack.seq);
  assert.equal(sent[0].ack.mid, ack.mid);
  assert.deepEqual(again.pending(), []);
  const h = await again.history(conv, { after: 0 });
  assert.deepEqual(h.msgs.map(m => m.body), ['once']);
});

test('two clients chat in a dm: each sees the other in order, own messages once', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  const a = client(alice);
  const b = client(bob);
  await Promise.all([a.connect(), b.connect()]);
  const aMsgs = collect(a, 'msg');
  const bMsgs = collect(b, 'msg');
  for (let i = 0; i < 5; i++) a.send(conv, `a${i}`);
  await waitFor(() => bMsgs.length === 5, { what: 'bob gets 5' });
  await b.send(conv, 'b0');
  await waitFor(() => aMsgs.length === 6, { what: 'alice sees 6 (her own 5 too)' });
  await waitFor(() => bMsgs.length === 6, { what: 'bob sees his own reply too' });
  const all = ['a0', 'a1', 'a2', 'a3', 'a4', 'b0'];
  assert.deepEqual(bMsgs.map(m => m.body), all);
  assert.deepEqual(aMsgs.map(m => m.body), all);
  assert.deepEqual(aMsgs.map(m => m.seq), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(bMsgs.map(m => m.from), [alice, alice, alice, alice, alice, bob]);
  assert.ok(bMsgs.every(m => m.iseq != null), 'dm pushes come with iseq');
});

test('read receipts, typing and presence reach the peer', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  const a = client(alice);
  const b = client(bob);
  await a.connect();
  const presence = collect(a, 'presence');
  await a.send(conv, 'hello');   // presence is for contacts: they share the dm now
  a.presenceSub([bob]);
  await waitFor(() => presence.some(p => p.user === bob && p.online === false), { what: 'bob offline' });
  await b.connect();
  await waitFor(() => presence.some(p => p.user === bob && p.online === true), { what: 'bob online' });
  const receipts = collect(a, 'receipt');
  const typing = collect(a, 'typing');
  const ack = await a.send(conv, 'read me');
  b.typing(conv);
  await waitFor(() => typing.length === 1, { what: 'typing relayed' });
  assert.deepEqual([typing[0].conv, typing[0].user], [conv, bob]);
  b.read(conv, ack.seq);
  await waitFor(() => receipts.length === 1, { what: 'receipt' });
  assert.deepEqual([receipts[0].user, receipts[0].seq], [bob, ack.seq]);
});

test('an inbox gap (a lost push) is filled with sync, in iseq order', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  let dropOnce = true;
  // Drop bob's push of seq 2 once; the retransmit is dropped too until sync ran.
  const tap = tapWebSocket({ drop: f => f.t === 'msg' && f.seq === 2 && f.conv === conv && dropOnce });
  const a = client(alice);
  const b = client(bob, { WebSocket: tap.WebSocket });
  await Promise.all([a.connect(), b.connect()]);
  const got = collect(b, 'msg');
  await a.send(conv, 'm1');
  await a.send(conv, 'm2');
  await waitFor(() => tap.dropped.length > 0, { what: 'the push of m2 dropped' });
  await a.send(conv, 'm3');
  await waitFor(() => got.length === 3, { what: 'bob has 3 messages' });
  dropOnce = false;
  assert.deepEqual(got.map(m => m.body), ['m1', 'm2', 'm3']);
  assert.ok(tap.sent.some(f => f.t === 'sync'), 'the gap was filled with sync');
  const syncFrame = tap.sent.find(f => f.t === 'sync');
  assert.equal(syncFrame.after, got[0].iseq, 'sync starts after the last contiguous iseq');
});

test('reconnecting syncs only what is new, from the stored iseq', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  const bobStore = memoryStorage();
  const a = client(alice);
  await a.connect();
  const b1 = client(bob, { storage: bobStore });
  await b1.connect();
  const early = collect(b1, 'acked');
  await a.send(conv, 'old1');
  await a.send(conv, 'old2');
  await waitFor(() => early.at(-1)?.iseq >= 2, { what: 'bob acked the old ones' });
  b1.close();
  for (const body of ['new1', 'new2', 'new3']) await a.send(conv, body);

  const tap = tapWebSocket();
  const b2 = client(bob, { storage: bobStore, WebSocket: tap.WebSocket });
  const got = collect(b2, 'msg');
  await b2.connect();
  await waitFor(() => got.length === 3, { what: 'the three new ones' });
  assert.deepEqual(got.map(m => m.body), ['new1', 'new2', 'new3']);
  assert.equal(tap.sent.find(f => f.t === 'sync').after, early.at(-1).iseq);
  await waitFor(() => tap.sent.some(f => f.t === 'ack' && f.iseq === got[2].iseq), { what: 'ack of the last' });
});

test('acks are cumulative and coalesced: a burst gets one ack with the highest iseq', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  const tap = tapWebSocket();
  const a = client(alice);
  // A long coalescing window makes "one ack for the burst" independent of timing.
  const b = client(bob, { WebSocket: tap.WebSocket, ackDelayMs: 1000 });
  await Promise.all([a.connect(), b.connect()]);
  const got = collect(b, 'msg');
  const acked = collect(b, 'acked');
  const r = await a.sendBatch(conv, Array.from({ length: 10 }, (_, i) => ({ body: `b${i}` })));
  assert.equal(r.t, 'ack_batch');
  assert.equal(r.last_seq - r.first_seq, 9);
  await waitFor(() => got.length === 10, { what: 'ten pushes' });
  await waitFor(() => acked.length === 1, { what: 'the ack', timeoutMs: 10000 });
  const acks = tap.sent.filter(f => f.t === 'ack');
  assert.equal(acks.length, 1);
  assert.equal(acks[0].iseq, got[9].iseq);
  assert.deepEqual(Object.keys(acks[0]).sort(), ['iseq', 't']);
});

test('retransmitted pushes are delivered once', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  let holdAcks = true;
  const tap = tapWebSocket();
  const a = client(alice);
  const b = client(bob, { WebSocket: tap.WebSocket });
  await Promise.all([a.connect(), b.connect()]);
  // Swallow bob's acks so the engine (--retransmit-ms=500) sends the push again.
  const socket = () => tap.sockets.at(-1);
  const realSend = socket().send.bind(socket());
  socket().send = data => (holdAcks && JSON.parse(data).t === 'ack' ? undefined : realSend(data));
  const got = collect(b, 'msg');
  await a.send(conv, 'once only');
  await waitFor(() => tap.received.filter(f => f.t === 'msg').length >= 2, { what: 'a retransmit' });
  holdAcks = false;
  await b.send(conv, 'reply'); // an event after the retransmit, to wait on
  await waitFor(() => got.some(m => m.body === 'reply'), { what: 'the reply' });
  assert.deepEqual(got.map(m => m.body), ['once only', 'reply']);
});

test('a room gap (a lost timeline push) is filled with history', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const room = `r:${uid('room')}`;
  let dropping = true;
  const tap = tapWebSocket({ drop: f => dropping && f.t === 'msg' && f.conv === room && f.body === 'lost' });
  const a = client(alice);
  const b = client(bob, { WebSocket: tap.WebSocket });
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const all = collect(b, 'msg');
  const texts = () => all.filter(m => m.type === 'text');
  await a.send(room, 'first');
  await waitFor(() => texts().some(m => m.body === 'first'), { what: 'first' });
  await a.send(room, 'lost');
  await waitFor(() => tap.dropped.length === 1, { what: 'dropped' });
  dropping = false;
  await a.send(room, 'after');
  await waitFor(() => texts().some(m => m.body === 'after'), { what: 'after' });
  assert.deepEqual(texts().map(m => m.body), ['first', 'lost', 'after']);
  assert.ok(all.every(m => m.iseq == null), 'room pushes carry no iseq');
  assert.ok(tap.sent.some(f => f.t === 'history' && f.conv === room), 'filled with history');
});

test('convs: pages joined are the whole list, most recent first, each once', async () => {
  const alice = uid('alice');
  const a = client(alice);
  await a.connect();
  const peers = Array.from({ length: 7 }, (_, i) => `p${i}x${alice}`);
  const activity = [];
  for (const p of peers) {
    const ack = await a.send(dmId(alice, p), `to ${p}`);
    activity.push({ conv: ack.conv, ts: ack.ts });
  }
  const group = `g:${uid('grp')}`;
  await a.groupCreate(group, [peers[0]]);
  const [created] = (await a.history(group)).msgs;
  activity.push({ conv: group, ts: created.ts });
  // Most recent first; equal ts ordered by conv, descending (docs/PROTOCOL.md).
  activity.sort((x, y) => y.ts - x.ts || (x.conv < y.conv ? 1 : -1));
  const expected = activity.map(x => x.conv);

  const seen = [];
  let cursor;
  let pages = 0;
  for (; pages < 20; pages++) {
    const r = await a.convs({ limit: 3, cursor });
    assert.ok(r.convs.length <= 3);
    seen.push(...r.convs);
    if (!r.more) {
      assert.equal(r.next, undefined);
      break;
    }
    cursor = r.next;
  }
  assert.equal(pages, 2, 'three pages of at most 3 for 8 conversations');
  assert.deepEqual(seen.map(r => r.conv), expected);
  const g = seen.find(r => r.conv === group);
  assert.equal(g.kind, 'group');
  assert.equal(g.mentions, 0);
  assert.equal(g.muted, false);
  const last = seen.find(r => r.conv === dmId(alice, peers[6]));
  assert.equal(last.kind, 'dm');
  assert.equal(last.last.body, `to ${peers[6]}`);
  assert.equal(last.unread, 0, 'own messages are read');
  assert.deepEqual((await a.convsAll({ limit: 2 })).map(r => r.conv), expected);
});

test('mute: ok, shown in convs, pushed to the other device', async () => {
  const alice = uid('alice');
  const conv = dmId(alice, 'zed');
  const phone = client(alice, { device: 'phone' });
  const web = client(alice, { device: 'web' });
  await Promise.all([phone.connect(), web.connect()]);
  await phone.send(conv, 'x');
  const mutes = collect(web, 'mute');
  const ok = await phone.mute(conv, true);
  assert.equal(ok.t, 'ok');
  await waitFor(() => mutes.length === 1, { what: 'mute pushed' });
  assert.deepEqual([mutes[0].conv, mutes[0].on], [conv, true]);
  const [row] = (await web.convs()).convs;
  assert.equal(row.muted, true);
});

test('groups: create, info, add, remove; history newest page and before', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const carol = uid('carol');
  const group = `g:${uid('team')}`;
  const a = client(alice);
  const b = client(bob);
  await Promise.all([a.connect(), b.connect()]);
  const bobMsgs = collect(b, 'msg');
  await a.groupCreate(group, [bob]);
  await a.groupAdd(group, [carol]);
  const info = await a.groupInfo(group);
  assert.deepEqual([...info.members].sort(), [alice, bob, carol].sort());
  assert.equal(info.mode, 'inbox');
  for (let i = 0; i < 6; i++) await a.send(group, `g${i}`);
  await a.groupRemove(group, [carol]);
  await waitFor(() => bobMsgs.length === 9, { what: 'bob sees 9 group messages' });
  assert.deepEqual(bobMsgs.map(m => m.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(bobMsgs[0].type, 'system');
  assert.equal(JSON.parse(bobMsgs[0].body).op, 'create');

  const newest = await b.history(group, { limit: 3 });
  assert.deepEqual(newest.msgs.map(m => m.seq), [9, 8, 7]);
  assert.equal(newest.more, true);
  const older = await b.history(group, { before: 7, limit: 3 });
  assert.deepEqual(older.msgs.map(m => m.seq), [6, 5, 4]);
  const tail = await b.history(group, { after: 7 });
  assert.deepEqual(tail.msgs.map(m => m.seq), [8, 9]);
  assert.equal(tail.more, false);
});

test('request errors reject with the code; no reply rejects with timeout', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const group = `g:${uid('own')}`;
  const a = client(alice);
  const b = client(bob, { requestTimeoutMs: 300 });
  await Promise.all([a.connect(), b.connect()]);
  await a.groupCreate(group, []);

  await assert.rejects(b.groupAdd(group, [bob]), { code: 'forbidden' }); // not the owner
  await assert.rejects(b.history(group), { code: 'forbidden' }); // not a member
  await assert.rejects(a.groupInfo(`g:${uid('none')}`), { code: 'not_found' });
  await assert.rejects(a.groupCreate(group, []), { code: 'forbidden' }); // exists
  await assert.rejects(a.request({ t: 'no_such_frame' }), { code: 'unknown_type' });
  await assert.rejects(a.history('bad id'), { code: 'bad_frame' });

  // A send that cannot succeed fails and leaves the outbox.
  const errs = collect(a, 'send_failed');
  await assert.rejects(a.send(`g:${uid('none')}`, 'x'), { code: 'not_found' });
  assert.equal(errs.length, 1);
  assert.deepEqual(a.pending(), []);

  // typing has no reply on success: as a request it can only time out.
  await assert.rejects(b.request({ t: 'typing', conv: dmId(alice, bob) }), { code: 'timeout' });
  // A read that is not allowed surfaces as an 'error' event.
  const errors = collect(b, 'error');
  b.read(group, 1);
  await waitFor(() => errors.length === 1, { what: 'read error event' });
  assert.equal(errors[0].code, 'forbidden');
  assert.equal(b.state, 'online', 'errors keep the connection');
});

test('replies are matched by req when many requests are in flight', async () => {
  const alice = uid('alice');
  const a = client(alice);
  await a.connect();
  const convs = Array.from({ length: 8 }, (_, i) => dmId(alice, `q${i}y${alice}`));
  await Promise.all(convs.map((c, i) => a.send(c, `n${i}`)));
  const results = await Promise.all(convs.map(c => a.history(c)));
  results.forEach((r, i) => {
    assert.equal(r.conv, convs[i]);
    assert.equal(r.msgs[0].body, `n${i}`);
  });
});

test('a terminal auth failure stops the client: no reconnect loop', async () => {
  const c = client('system'); // reserved by the engine
  await assert.rejects(c.connect(), { code: 'forbidden' });
  assert.equal(c.state, 'closed');
  const bad = client('bad user!');
  await assert.rejects(bad.connect(), { code: 'bad_frame' });
  assert.equal(bad.state, 'closed');
});

test('a dropped socket reconnects, re-auths and sends what was queued meanwhile', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const conv = dmId(alice, bob);
  const tap = tapWebSocket();
  const a = client(alice, { WebSocket: tap.WebSocket });
  const b = client(bob);
  await Promise.all([a.connect(), b.connect()]);
  const states = collect(a, 'state');
  const got = collect(b, 'msg');
  tap.sockets.at(-1).close(); // the network drops from the client's side
  const sends = ['q1', 'q2', 'q3'].map(t => a.send(conv, t));
  const acks = await Promise.all(sends);
  assert.deepEqual(acks.map(x => x.seq), [1, 2, 3]);
  assert.ok(states.some(s => s.state === 'offline') && states.at(-1).state === 'online');
  await waitFor(() => got.length === 3, { what: 'bob gets the three' });
  assert.deepEqual(got.map(m => m.body), ['q1', 'q2', 'q3']);
  assert.equal(tap.sent.filter(f => f.t === 'auth').length, 2);
});

test('a send over the frame limit is refused at once and never queued', async () => {
  const alice = uid('alice');
  const c = client(alice);
  await c.connect();
  const conv = dmId(alice, 'zed');
  await assert.rejects(c.send(conv, 'x'.repeat(70000)), e => e.code === 'too_large');
  assert.deepEqual(c.pending(), []);
  // the connection is untouched: the next send goes through
  assert.equal((await c.send(conv, 'small')).seq, 1);
});
