// Browser end-to-end test of examples/web: Debian's Chromium (headless, driven
// by playwright-core) against the real engine. Two users in two browser
// contexts chat in a dm and a group, recall and edit, scroll back through
// history, and one of them loses the network and gets everything back once.
//
// The page is served by the engine itself when it serves examples/web
// (GET /imclient.js is 200), else by a small static server started here,
// pointed at the engine with ?ws=. WEB_URL overrides both.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { extname, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startEngine, tempDir, waitFor, memoryStorage, ROOT } from '../js/helpers.mjs';
import { IMClient } from '../../examples/web/imclient.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = join(ROOT, 'examples/web');
const ARTIFACTS = join(HERE, 'artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const T = 15000; // deadline for one UI condition

let engine, tmp, staticServer, browser, base;
const ctx = {};
let shot = 0;

/** Serve examples/web read-only: `/` is index.html, other names map to files there. */
function serveStatic() {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png' };
  const server = createServer(async (req, res) => {
    const name = new URL(req.url, 'http://x').pathname.slice(1) || 'index.html';
    const file = resolve(WEB, name);
    if (!file.startsWith(WEB + '/') || name.includes('..')) return res.writeHead(404).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise(r => server.listen(0, '127.0.0.1', () => r(server)));
}

async function engineServesClient() {
  try {
    const r = await fetch(`${engine.http}/imclient.js`);
    return r.status === 200 && (await r.text()).includes('class IMClient');
  } catch {
    return false;
  }
}

async function snap(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`) });
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  tmp = tempDir('imengine-e2e-');
  engine = await startEngine({ data: tmp.dir });
  // Short client timers so a cut network is noticed quickly even without an 'offline' event.
  const tuning = 'pingMs=1500&pongTimeoutMs=1500&backoffBaseMs=200&backoffMaxMs=1000';
  if (process.env.WEB_URL) base = `${process.env.WEB_URL.replace(/\/$/, '')}/?ws=${encodeURIComponent(engine.url)}&${tuning}`;
  else if (await engineServesClient()) base = `${engine.http}/?${tuning}`;
  else {
    staticServer = await serveStatic();
    base = `http://127.0.0.1:${staticServer.address().port}/?ws=${encodeURIComponent(engine.url)}&${tuning}`;
  }
  console.log(`# page: ${base}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  for (const user of ['alice', 'bob']) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const page = await context.newPage();
    page.on('pageerror', e => console.log(`# ${user} page error: ${e.message}`));
    ctx[user] = { context, page };
  }
});

after(async () => {
  await browser?.close();
  staticServer?.close();
  await engine?.stop();
  tmp?.cleanup();
});

const page = user => ctx[user].page;
const tid = (user, id) => page(user).getByTestId(id);
const bodies = async (user) => page(user).locator('#messages [data-testid="msg"]:not(.system) [data-testid="msg-body"]').allTextContents();
const convItem = (user, conv) => page(user).locator(`[data-testid="conv-item"][data-conv="${conv}"]`);

async function login(user) {
  const p = page(user);
  await p.goto(base);
  await tid(user, 'login-user').fill(user);
  await tid(user, 'login-device').fill(`web-${user}`);
  await tid(user, 'login-submit').click();
  await p.locator('[data-testid="conn-state"][data-state="online"]').waitFor({ timeout: T });
}

async function sendText(user, text) {
  await tid(user, 'composer-input').fill(text);
  await tid(user, 'composer-send').click();
}

async function waitBodies(user, check, what) {
  let last = [];
  try {
    return await waitFor(async () => check((last = await bodies(user))), { timeoutMs: T, what: `${user}: ${what}` });
  } catch (e) {
    const state = await page(user).evaluate(() => ({
      conn: document.getElementById('conn-state').textContent,
      error: document.getElementById('error-banner').hidden ? null : document.getElementById('error-text').textContent,
      scrollTop: document.getElementById('messages').scrollTop,
    }));
    e.message += `; shown: ${last.length} [${last.slice(0, 3).join('|')} … ${last.slice(-3).join('|')}]; page: ${JSON.stringify(state)}`;
    throw e;
  }
}

test('log in, open a dm by name, chat both ways with receipts, typing and mentions', async () => {
  await login('alice');
  await login('bob');
  await tid('alice', 'dm-user').fill('bob');
  await tid('alice', 'dm-open').click();
  await waitFor(async () => (await tid('alice', 'chat-title').textContent()) === 'bob', { what: 'dm open' });
  assert.equal(await page('alice').locator('#chat-pane').getAttribute('data-conv'), 'dm:alice:bob');

  // An empty message is refused, with a message to the user.
  await sendText('alice', '   ');
  await tid('alice', 'error-banner').waitFor({ state: 'visible', timeout: T });
  assert.match(await tid('alice', 'error-text').textContent(), /empty/);
  await page('alice').locator('#error-close').click();

  await sendText('alice', 'hello bob');
  await waitBodies('alice', b => b.includes('hello bob'), 'own message shown');
  // bob's list gets the conversation live, with an unread badge.
  await convItem('bob', 'dm:alice:bob').locator('[data-testid="unread-badge"]').waitFor({ timeout: T });
  assert.equal(await convItem('bob', 'dm:alice:bob').locator('[data-testid="unread-badge"]').textContent(), '1');
  await snap(page('bob'), 'bob-unread');
  await convItem('bob', 'dm:alice:bob').click();
  await waitBodies('bob', b => b.join('|') === 'hello bob', 'bob sees the message');
  await waitFor(async () => (await convItem('bob', 'dm:alice:bob').locator('[data-testid="unread-badge"]').count()) === 0, { what: 'badge cleared' });
  // Viewing sends `read`: alice sees the receipt on her message.
  await tid('alice', 'read-marker').waitFor({ timeout: T });

  await tid('bob', 'composer-input').pressSequentially('hi');
  await waitFor(async () => /bob is typing/.test(await tid('alice', 'typing').textContent()), { timeoutMs: T, what: 'typing shown' });
  await tid('bob', 'composer-input').fill('hi @alice, welcome');
  await tid('bob', 'composer-send').click();
  await waitBodies('alice', b => b.at(-1) === 'hi @alice, welcome', 'alice gets the reply');
  await snap(page('alice'), 'dm-chat');
});

test('create a group with a member and use it; a non-member gets forbidden', async () => {
  await tid('alice', 'new-group-toggle').click();
  await tid('alice', 'group-name').fill('team');
  await tid('alice', 'group-members').fill('bob');
  await tid('alice', 'group-create').click();
  await waitFor(async () => (await tid('alice', 'chat-title').textContent()) === '# team', { what: 'group open' });
  await sendText('alice', 'welcome to the team');
  await convItem('bob', 'g:team').waitFor({ timeout: T });
  await convItem('bob', 'g:team').click();
  await waitBodies('bob', b => b.includes('welcome to the team'), 'bob sees the group message');
  await sendText('bob', 'glad to be here');
  await waitBodies('alice', b => b.join('|') === 'welcome to the team|glad to be here', 'alice sees both');
  const system = page('alice').locator('#messages .msg.system').first();
  assert.match(await system.textContent(), /alice created the group with bob/);

  // A group bob is not in: opening it shows the engine's error.
  const { page: a } = ctx.alice;
  await tid('alice', 'new-group-toggle').click();
  await tid('alice', 'group-name').fill('secret');
  await tid('alice', 'group-members').fill('');
  await tid('alice', 'group-create').click();
  await waitFor(async () => (await tid('alice', 'chat-title').textContent()) === '# secret', { what: 'secret open' });
  await convItem('alice', 'g:secret').waitFor({ timeout: T }); // a new group is listed at once
  await tid('bob', 'conv-name').fill('secret');
  await tid('bob', 'conv-open').click();
  await tid('bob', 'error-banner').waitFor({ state: 'visible', timeout: T });
  assert.match(await tid('bob', 'error-text').textContent(), /forbidden/);
  await snap(page('bob'), 'forbidden');
  await page('bob').locator('#error-close').click();
  await a.bringToFront();
});

test('the network of one page drops: what the other side sent meanwhile appears once, in order', async () => {
  await convItem('alice', 'dm:alice:bob').click();
  await convItem('bob', 'dm:alice:bob').click();
  await waitBodies('bob', b => b.includes('hello bob'), 'bob in the dm');
  const before = await bodies('bob');

  await ctx.bob.context.setOffline(true);
  await page('bob').locator('[data-testid="conn-state"]:not([data-state="online"])').waitFor({ timeout: T });
  await snap(page('bob'), 'bob-offline');
  for (const t of ['while away 1', 'while away 2', 'while away 3']) await sendText('alice', t);
  await waitBodies('alice', b => b.at(-1) === 'while away 3', 'alice sent three');
  await waitFor(async () => (await page('alice').locator('.msg.pending').count()) === 0, { timeoutMs: T, what: 'alice acked' });
  // bob types while offline: kept in the outbox and sent after the restore.
  await sendText('bob', 'typed offline');
  await ctx.bob.context.setOffline(false);
  await page('bob').locator('[data-testid="conn-state"][data-state="online"]').waitFor({ timeout: T });

  const expected = [...before, 'while away 1', 'while away 2', 'while away 3', 'typed offline'];
  await waitBodies('bob', b => b.length >= expected.length, 'bob caught up');
  await waitFor(async () => (await page('bob').locator('.msg.pending').count()) === 0, { timeoutMs: T, what: 'bob outbox empty' });
  assert.deepEqual(await bodies('bob'), expected, 'each once, in order');
  await waitBodies('alice', b => b.at(-1) === 'typed offline', 'alice gets the offline text');
  assert.equal((await bodies('alice')).filter(x => x === 'typed offline').length, 1);

  // Reload bob's page: nothing is shown twice after the history reload either.
  await page('bob').reload();
  await page('bob').locator('[data-testid="conn-state"][data-state="online"]').waitFor({ timeout: T });
  await convItem('bob', 'dm:alice:bob').click();
  await waitBodies('bob', b => b.length === expected.length, 'bob after reload');
  assert.deepEqual(await bodies('bob'), expected);
});

test('scroll to the top loads older pages of history', async () => {
  // 70 messages in a room, written by a plain client before alice joins. A
  // room, not a dm: its messages are not in alice's inbox, so none of them
  // reaches the page by sync; they come only from history pages.
  const carol = new IMClient({ url: engine.url, user: 'carol', device: 'seed', storage: memoryStorage() });
  await carol.connect();
  const conv = 'r:archive';
  await carol.join(conv);
  for (let i = 1; i <= 70; i++) carol.send(conv, `old ${i}`);
  await waitFor(() => carol.pending().length === 0, { timeoutMs: T, what: 'seeded' });
  carol.close();

  await page('alice').locator('#conv-kind').selectOption('r');
  await tid('alice', 'conv-name').fill('archive');
  await tid('alice', 'conv-open').click();
  await waitBodies('alice', b => b.length > 0 && b.length < 70 && b.at(-1) === 'old 70', 'newest page only');
  for (let i = 0; i < 5 && (await bodies('alice')).length < 70; i++) {
    const n = (await bodies('alice')).length; // before scrolling: the page may load at once
    await page('alice').locator('#messages').evaluate(el => {
      el.scrollTop = 0;
      el.dispatchEvent(new Event('scroll')); // also when it sat at the top already
    });
    await waitBodies('alice', b => b.length > n || b.length === 70, 'an older page');
  }
  const all = await bodies('alice');
  assert.deepEqual(all, Array.from({ length: 70 }, (_, i) => `old ${i + 1}`));
});

test('a message mentioning me is highlighted (v1.1: mentions)', async () => {
  await convItem('alice', 'dm:alice:bob').click();
  const reply = page('alice').locator('#messages [data-testid="msg"]', { hasText: 'hi @alice, welcome' });
  await waitFor(async () => (await reply.getAttribute('class')).includes('mention'), { timeoutMs: T, what: 'mention highlighted (the stored message carries mentions)' });
});

test('recall and edit own messages from the message menu (v1.1: recall, edit)', async () => {
  await convItem('alice', 'dm:alice:bob').click();
  await convItem('bob', 'dm:alice:bob').click();
  await sendText('alice', 'teh typo');
  await sendText('alice', 'to be recalled');
  await waitBodies('bob', b => b.at(-1) === 'to be recalled', 'bob has both');

  const mine = text => page('alice').locator('#messages [data-testid="msg"].me', { hasText: text });
  await mine('teh typo').locator('[data-testid="msg-menu"]').click();
  await mine('teh typo').locator('[data-testid="msg-edit"]').click();
  await tid('alice', 'composer-input').fill('the typo');
  await tid('alice', 'composer-send').click();
  await waitBodies('bob', b => b.includes('the typo') && !b.includes('teh typo'), 'edit shown to bob');
  assert.ok(await page('bob').locator('.msg.edited', { hasText: 'the typo' }).count());

  await mine('to be recalled').locator('[data-testid="msg-menu"]').click();
  await mine('to be recalled').locator('[data-testid="msg-recall"]').click();
  await waitBodies('bob', b => !b.includes('to be recalled') && b.at(-1) === 'message recalled', 'recall shown to bob');
  await waitBodies('alice', b => b.at(-1) === 'message recalled', 'recall shown to alice');
  await snap(page('bob'), 'recall-edit');
});

// The README's picture: written to docs/img only with UPDATE_DOCS_IMG=1, so
// that a test run leaves the work tree as it was.
test('a good screenshot of the chat for the docs', async () => {
  await convItem('alice', 'dm:alice:bob').click();
  await waitBodies('alice', b => b.includes('hello bob'), 'dm shown');
  await page('alice').locator('#messages').evaluate(el => (el.scrollTop = el.scrollHeight));
  if (process.env.UPDATE_DOCS_IMG === '1') {
    await mkdir(join(ROOT, 'docs/img'), { recursive: true });
    await page('alice').screenshot({ path: join(ROOT, 'docs/img/web-client.png') });
  }
  await snap(page('alice'), 'final');
});
