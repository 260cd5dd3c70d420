// v1.1 chat features (shared/PROTOCOL.md "Mentions, mute" and "Recall and
// edit"): mentions, recall and edit through imclient.js.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { IMClient, dmId } from '../../examples/web/imclient.js';
import { startEngine, tempDir, waitFor, memoryStorage, collect, uid } from './helpers.mjs';

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

async function online(user) {
  const c = new IMClient({ url: engine.url, user, device: 'd1', storage: memoryStorage(), ackDelayMs: 20, requestTimeoutMs: 5000 });
  clients.push(c);
  await c.connect();
  return c;
}

test('mentions: carried on the push, counted in convs, members only', async () => {
  const [alice, bob, carol] = [uid('alice'), uid('bob'), uid('carol')];
  const group = `g:${uid('m')}`;
  const a = await online(alice);
  const b = await online(bob);
  await a.groupCreate(group, [bob, carol]);
  const got = collect(b, 'msg');
  const mentioned = collect(b, 'mentioned');
  await a.send(group, `hi @${bob} and @nobody`, { mentions: [bob, 'nobody'] });
  await waitFor(() => got.some(m => m.type === 'text'), { what: 'the push' });
  const m = got.find(x => x.type === 'text');
  assert.deepEqual(m.mentions, [bob], 'non-members are dropped');
  assert.equal(mentioned.length, 1);
  const row = (await b.convs()).convs.find(r => r.conv === group);
  assert.equal(row.mentions, 1);
  const [stored] = (await b.history(group, { limit: 1 })).msgs;
  assert.deepEqual(stored.mentions, [bob]);
});

test('@all is for the group owner only', async () => {
  const [alice, bob] = [uid('alice'), uid('bob')];
  const group = `g:${uid('all')}`;
  const a = await online(alice);
  const b = await online(bob);
  await a.groupCreate(group, [bob]);
  await a.send(group, 'everyone', { mentions: ['@all'] });
  await assert.rejects(b.send(group, 'me too', { mentions: ['@all'] }), { code: 'forbidden' });
});

test('a mention in a read-diffused room reaches the user as a mention frame', async () => {
  const [alice, bob] = [uid('alice'), uid('bob')];
  const room = `r:${uid('mr')}`;
  const a = await online(alice);
  const b = await online(bob);
  await a.join(room);
  await b.join(room);
  const frames = collect(b, 'mention');
  const msgs = collect(b, 'mentioned');
  const ack = await a.send(room, `@${bob} look`, { mentions: [bob] });
  // The contract: a msg with iseq if the inbox holds a copy, else a mention
  // frame. A room keeps no inbox copies: the frame, besides the timeline push.
  await waitFor(() => frames.length === 1, { what: 'the mention frame' });
  assert.deepEqual([frames[0].conv, frames[0].seq, frames[0].from], [room, ack.seq, alice]);
  await waitFor(() => msgs.length === 1, { what: 'the timeline push, with mentions' });
  assert.equal(msgs[0].iseq, undefined);
  const row = (await b.convs()).convs.find(r => r.conv === room);
  assert.equal(row.mentions, 1);
});

test('recall: a new message pointing at the original; history shows it recalled', async () => {
  const [alice, bob] = [uid('alice'), uid('bob')];
  const conv = dmId(alice, bob);
  const a = await online(alice);
  const b = await online(bob);
  const recalls = collect(b, 'recall');
  const ack = await a.send(conv, 'oops');
  const ok = await a.recall(conv, ack.seq);
  assert.equal(ok.t, 'ok');
  assert.equal(ok.seq, ack.seq + 1);
  await waitFor(() => recalls.length === 1, { what: 'bob gets the recall' });
  assert.equal(recalls[0].seq, ack.seq);
  assert.equal(recalls[0].msg.type, 'recall');
  assert.deepEqual(recalls[0].msg.ex, { seq: ack.seq });
  const h = await b.history(conv, { after: 0 });
  assert.equal(h.msgs[0].recalled, true);
  assert.equal(h.msgs[0].body, '');
  assert.equal(h.msgs[1].type, 'recall');
});

test('edit: new body in history with "edited"; only the sender may edit', async () => {
  const [alice, bob] = [uid('alice'), uid('bob')];
  const conv = dmId(alice, bob);
  const a = await online(alice);
  const b = await online(bob);
  const edits = collect(b, 'edit');
  const ack = await a.send(conv, 'teh typo');
  const ok = await a.edit(conv, ack.seq, 'the typo');
  assert.equal(ok.seq, ack.seq + 1);
  await waitFor(() => edits.length === 1, { what: 'bob gets the edit' });
  assert.equal(edits[0].body, 'the typo');
  const [orig] = (await b.history(conv, { after: 0 })).msgs;
  assert.equal(orig.body, 'the typo');
  assert.equal(typeof orig.edited, 'number');
  await assert.rejects(b.edit(conv, ack.seq, 'not yours'), { code: 'forbidden' });
  await assert.rejects(b.recall(conv, ack.seq), { code: 'forbidden' });
  await assert.rejects(a.recall(conv, 999), { code: 'not_found' });
});

test('a group owner may recall any message of the group', async () => {
  const [alice, bob] = [uid('alice'), uid('bob')];
  const group = `g:${uid('own')}`;
  const a = await online(alice);
  const b = await online(bob);
  await a.groupCreate(group, [bob]);
  const ack = await b.send(group, 'spam');
  await a.recall(group, ack.seq);
  const h = await a.history(group, { after: 0 });
  assert.equal(h.msgs.find(m => m.seq === ack.seq).recalled, true);
  await assert.rejects(a.edit(group, ack.seq, 'x'), { code: 'forbidden' });
});
