// app.js — the browser chat client. All protocol work is in imclient.js; this
// file keeps the view state (conversation list, open chat) and renders it.

import { IMClient, dmId, dmPeer, convKind } from './imclient.js';

const $ = id => document.getElementById(id);
const params = new URLSearchParams(location.search);
const LOGIN_KEY = 'imweb:login';

/** Same-origin /ws unless ?ws= points elsewhere (serving the page from a static server). */
function wsUrl() {
  if (params.get('ws')) return params.get('ws');
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** Numeric client options from the query (?pingMs=…), so a test can shorten timers. */
function tuning() {
  const out = {};
  for (const k of ['pingMs', 'pongTimeoutMs', 'backoffBaseMs', 'backoffMaxMs', 'requestTimeoutMs']) {
    if (params.has(k) && Number.isFinite(+params.get(k))) out[k] = +params.get(k);
  }
  return out;
}

// ---- state ------------------------------------------------------------------

let client = null;
let me = null;
const convs = new Map(); // conv -> row of convs_result, kept current by pushes
const chats = new Map(); // conv -> {msgs: Map seq->msg, oldest, more, loaded, owner, peerRead}
let current = null;
let editing = null; // {conv, seq} while the composer edits a message
const typingTimers = new Map();
const presence = new Map(); // user -> online, from presence pushes
let lastTypingSent = 0;

function chat(conv) {
  if (!chats.has(conv)) chats.set(conv, { msgs: new Map(), oldest: null, more: true, loaded: false, owner: null, peerRead: 0 });
  return chats.get(conv);
}

// ---- errors and connection state --------------------------------------------

function showError(err) {
  const text = err?.code ? `${err.code}: ${err.frame?.msg ?? err.message}` : String(err?.message ?? err);
  $('error-text').textContent = text;
  $('error-banner').hidden = false;
}
$('error-close').onclick = () => ($('error-banner').hidden = true);

function showState({ state, retryInMs }) {
  const el = $('conn-state');
  el.dataset.state = state;
  el.textContent = state === 'offline' && retryInMs != null ? `offline — retrying in ${Math.ceil(retryInMs / 1000)} s` : state;
}

// ---- login ------------------------------------------------------------------

function savedLogin() {
  try {
    return JSON.parse(localStorage.getItem(LOGIN_KEY));
  } catch {
    return null;
  }
}

function defaultDevice() {
  return `web-${Math.random().toString(36).slice(2, 8)}`;
}

$('login-form').onsubmit = e => {
  e.preventDefault();
  const login = { user: $('login-user').value.trim(), device: $('login-device').value.trim(), token: $('login-token').value.trim() };
  localStorage.setItem(LOGIN_KEY, JSON.stringify(login));
  start(login);
};

$('logout').onclick = () => {
  client?.close();
  client = null;
  localStorage.removeItem(LOGIN_KEY);
  location.reload();
};

function start(login) {
  me = login.user;
  $('login-form').hidden = true;
  $('chat-app').hidden = false;
  $('logout').hidden = false;
  $('whoami').textContent = `${login.user} (${login.device})`;
  client = new IMClient({ url: wsUrl(), ...login, ...tuning() });
  client.on('state', s => {
    showState(s);
    if (s.state === 'online') onOnline();
    if (s.state === 'closed' && s.error) showError(s.error);
  });
  client.on('msg', onMsg);
  client.on('sent', ({ item, ack }) => onSent(item, ack));
  client.on('send_failed', ({ error }) => {
    showError(error);
    renderMessages();
  });
  client.on('outbox', () => current && renderMessages());
  client.on('read', f => setReadSeq(f.conv, f.seq));
  client.on('receipt', f => {
    const c = chat(f.conv);
    c.peerRead = Math.max(c.peerRead, f.seq);
    if (f.conv === current) renderMessages();
  });
  client.on('typing', onTyping);
  client.on('presence', f => {
    presence.set(f.user, f.online);
    const peer = current && dmPeer(current, me);
    if (peer === f.user) setPresence(f.online);
  });
  client.on('mute', f => updateConv(f.conv, { muted: f.on }));
  client.on('mention', f => {
    if (f.conv !== current && firstMention(f.conv, f.seq))
      updateConv(f.conv, { mentions: (convs.get(f.conv)?.mentions ?? 0) + 1 });
  });
  client.on('error', showError);
  client.connect().catch(showError);
}

// After every (re)connect the list is reloaded: counts may have moved while away.
async function onOnline() {
  try {
    const rows = await client.convsAll({ limit: 50 });
    for (const r of rows) convs.set(r.conv, { ...convs.get(r.conv), ...r });
    renderConvs();
    if (current) markRead(current);
  } catch (e) {
    showError(e);
  }
}

// ---- conversation list --------------------------------------------------------

function activity(row) {
  return row.last?.ts ?? row.ts ?? 0;
}

function updateConv(conv, fields) {
  const row = convs.get(conv) ?? { conv, kind: convKind(conv), unread: 0, mentions: 0, muted: false, last_seq: 0, read_seq: 0 };
  convs.set(conv, { ...row, ...fields });
  renderConvs();
}

function setReadSeq(conv, seq) {
  const row = convs.get(conv);
  if (!row || seq <= row.read_seq) return;
  const unread = Math.max(0, row.last_seq - seq);
  updateConv(conv, { read_seq: seq, unread, mentions: unread ? row.mentions : 0 });
}

function title(conv) {
  const peer = dmPeer(conv, me);
  if (peer) return peer;
  return conv.startsWith('g:') ? `# ${conv.slice(2)}` : `◇ ${conv.slice(2)}`;
}

function preview(last) {
  if (!last) return '';
  if (last.type === 'recall') return `${last.from} recalled a message`;
  if (last.type === 'edit') return `${last.from} edited a message`;
  if (last.type === 'system') return systemText(last);
  return `${last.from === me ? 'you' : last.from}: ${last.body}`;
}

function renderConvs() {
  const ul = $('conv-list');
  const rows = [...convs.values()].sort((a, b) => activity(b) - activity(a) || (a.conv < b.conv ? 1 : -1));
  ul.replaceChildren(
    ...rows.map(r => {
      const li = el('li', { class: `conv${r.conv === current ? ' active' : ''}${r.muted ? ' muted' : ''}`, 'data-testid': 'conv-item', 'data-conv': r.conv });
      const head = el('div', { class: 'conv-head' }, el('span', { class: 'conv-title', 'data-testid': 'conv-title' }, title(r.conv)));
      if (r.mentions > 0) head.append(el('span', { class: 'badge mention', 'data-testid': 'mention-badge' }, `@${r.mentions}`));
      if (r.unread > 0) head.append(el('span', { class: 'badge', 'data-testid': 'unread-badge' }, String(r.unread)));
      li.append(head, el('div', { class: 'conv-last' }, preview(r.last)));
      li.onclick = () => openConv(r.conv);
      return li;
    }),
  );
}

// ---- opening conversations ------------------------------------------------------

$('open-dm').onsubmit = e => {
  e.preventDefault();
  const peer = $('dm-user').value.trim();
  try {
    openConv(dmId(me, peer));
    $('dm-user').value = '';
  } catch (err) {
    showError(err);
  }
};

$('open-conv').onsubmit = async e => {
  e.preventDefault();
  const conv = `${$('conv-kind').value}:${$('conv-name').value.trim()}`;
  try {
    if (conv.startsWith('r:')) await client.join(conv); // anyone may join a room
    openConv(conv);
    $('conv-name').value = '';
  } catch (err) {
    showError(err);
  }
};

$('group-form').onsubmit = async e => {
  e.preventDefault();
  const conv = `g:${$('group-name').value.trim()}`;
  const members = $('group-members').value.split(/[\s,]+/).filter(Boolean);
  try {
    await client.groupCreate(conv, members);
    $('group-name').value = $('group-members').value = '';
    $('new-group').open = false;
    openConv(conv);
  } catch (err) {
    showError(err);
  }
};

async function openConv(conv) {
  current = conv;
  editing = null;
  $('edit-bar').hidden = true;
  $('chat-empty').hidden = true;
  $('chat-pane').hidden = false;
  $('chat-pane').dataset.conv = conv;
  $('chat-title').textContent = title(conv);
  $('typing').textContent = '';
  const peer = dmPeer(conv, me);
  setPresence(peer ? presence.get(peer) : null);
  if (peer) client.presenceSub([peer]);
  renderMute();
  renderConvs();
  renderMessages();
  const c = chat(conv);
  try {
    if (!c.loaded) {
      await loadPage(conv, {});
      c.loaded = true;
      if (convKind(conv) === 'group') {
        const info = await client.groupInfo(conv);
        c.owner = info.owner ?? null;
      }
    }
  } catch (err) {
    showError(err);
  }
  if (current === conv) {
    renderMessages(true);
    markRead(conv);
  }
}

function setPresence(online) {
  const p = $('chat-presence');
  p.textContent = online == null ? '' : online ? '● online' : '○ offline';
  p.dataset.online = online == null ? '' : String(online);
}

function renderMute() {
  const row = convs.get(current);
  $('mute-toggle').textContent = row?.muted ? 'unmute' : 'mute';
}

$('mute-toggle').onclick = async () => {
  const on = !convs.get(current)?.muted;
  try {
    await client.mute(current, on);
    updateConv(current, { muted: on });
    renderMute();
  } catch (err) {
    showError(err);
  }
};

/** Mark the open conversation read up to its newest message we know of. */
function markRead(conv) {
  if (document.visibilityState === 'hidden') return;
  const c = chat(conv);
  const top = Math.max(0, ...c.msgs.keys(), convs.get(conv)?.last_seq ?? 0);
  if (top > 0) {
    client.read(conv, top);
    setReadSeq(conv, top);
  }
}
document.addEventListener('visibilitychange', () => current && markRead(current));

// ---- history ----------------------------------------------------------------------

/** One page: the newest ({}), or older than the oldest loaded ({before}). */
async function loadPage(conv, { before }) {
  const c = chat(conv);
  const r = await client.history(conv, before ? { before, limit: 30 } : { limit: 30 });
  for (const m of r.msgs) store(m);
  for (const m of [...r.msgs].sort((a, b) => a.seq - b.seq)) applyControl(m);
  c.more = r.more;
  // The newest page may hold messages whose pushes the client now drops as
  // duplicates: the list learns of them here (e.g. a group just created).
  const newest = r.msgs.reduce((a, m) => (!a || m.seq > a.seq ? m : a), null);
  const row = convs.get(conv);
  if (!before && newest && (!row || (row.last?.seq ?? 0) < newest.seq)) {
    updateConv(conv, { last: newest, last_seq: Math.max(row?.last_seq ?? 0, newest.seq) });
  }
  const seqs = r.msgs.map(m => m.seq);
  if (seqs.length) c.oldest = Math.min(c.oldest ?? Infinity, ...seqs);
  else if (!before) c.more = false;
}

let loadingOlder = false;
$('messages').addEventListener('scroll', async () => {
  const box = $('messages');
  const c = current && chat(current);
  if (!c || box.scrollTop > 40 || !c.more || !c.oldest || c.oldest <= 1 || loadingOlder) return;
  loadingOlder = true;
  const conv = current;
  const before = box.scrollHeight - box.scrollTop;
  try {
    await loadPage(conv, { before: c.oldest });
    if (conv === current) {
      renderMessages();
      box.scrollTop = box.scrollHeight - before; // keep the reader's place
    }
  } catch (err) {
    showError(err);
  } finally {
    loadingOlder = false;
  }
});

// ---- messages -----------------------------------------------------------------------

function store(m) {
  const c = chat(m.conv);
  const old = c.msgs.get(m.seq);
  // a message recalled or edited before we stored it keeps that state
  c.msgs.set(m.seq, old ? { ...m, recalled: old.recalled || m.recalled, edited: old.edited || m.edited, body: old.recalled ? '' : old.edited ? old.body : m.body } : m);
}

/** Recall and edit messages change an earlier one; they are not shown themselves. */
function applyControl(m) {
  if ((m.type !== 'recall' && m.type !== 'edit') || m.ex?.seq == null) return;
  const c = chat(m.conv);
  const target = c.msgs.get(m.ex.seq) ?? { conv: m.conv, seq: m.ex.seq, from: m.from, type: 'text', ts: m.ts, placeholder: true };
  if (m.type === 'recall') c.msgs.set(target.seq, { ...target, recalled: true, body: '' });
  else if (!target.recalled) c.msgs.set(target.seq, { ...target, body: m.body, edited: m.ts });
}

// A read-diffused mention arrives twice (the message and a `mention`
// frame): it is counted once.
const mentionsCounted = new Set();
function firstMention(conv, seq) {
  const key = `${conv}#${seq}`;
  if (mentionsCounted.has(key)) return false;
  mentionsCounted.add(key);
  return true;
}

function onMsg(m) {
  store(m);
  applyControl(m);
  const row = convs.get(m.conv);
  const viewing = m.conv === current && document.visibilityState !== 'hidden';
  const mine = m.from === me;
  const mentioned =
    !mine && (m.mentions?.includes(me) || m.mentions?.includes('@all')) && firstMention(m.conv, m.seq);
  updateConv(m.conv, {
    last: m,
    last_seq: Math.max(row?.last_seq ?? 0, m.seq),
    unread: viewing || mine ? row?.unread ?? 0 : (row?.unread ?? 0) + 1,
    mentions: mentioned && !viewing ? (row?.mentions ?? 0) + 1 : row?.mentions ?? 0,
  });
  if (m.conv === current) {
    if (!mine) $('typing').textContent = '';
    renderMessages(true);
    if (viewing) markRead(m.conv);
  }
}

function onSent(item, ack) {
  if (item.kind !== 'send') return;
  // The push usually arrives around the ack; store from the ack so the
  // message is shown in place even before it does (same seq: no duplicate).
  const c = chat(item.conv);
  if (!c.msgs.has(ack.seq)) {
    store({ conv: item.conv, seq: ack.seq, mid: ack.mid, ts: ack.ts, from: me, device: client.device, type: item.type, body: item.body, mentions: item.mentions });
  }
  if (item.conv === current) renderMessages(true);
}

function onTyping(f) {
  if (f.user === me) return;
  clearTimeout(typingTimers.get(f.conv));
  if (f.conv === current) $('typing').textContent = `${f.user} is typing…`;
  typingTimers.set(f.conv, setTimeout(() => f.conv === current && ($('typing').textContent = ''), 3000));
}

function systemText(m) {
  try {
    const { op, members } = JSON.parse(m.body);
    // a create lists the creator among the members: name only the others
    const who = (members ?? []).filter(u => op !== 'create' || u !== m.from).join(', ');
    const verbs = { create: who ? `created the group with ${who}` : 'created the group', add: `added ${who}`, remove: `removed ${who}`, join: 'joined', leave: 'left' };
    return `${m.from} ${verbs[op] ?? op}`;
  } catch {
    return m.body;
  }
}

/** Body text with @mentions as highlighted spans (text nodes only: no HTML injection). */
function bodyNodes(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(/@[A-Za-z0-9_.@-]+/g)) {
    out.push(text.slice(last, match.index));
    out.push(el('span', { class: 'at' }, match[0]));
    last = match.index + match[0].length;
  }
  out.push(text.slice(last));
  return out;
}

function mentionsIn(text) {
  const names = [...text.matchAll(/@([A-Za-z0-9_.@-]+)/g)].map(m => m[1].replace(/[.@-]+$/, ''));
  return [...new Set(names.filter(n => n && n !== me))];
}

function renderMessages(stickToBottom = false) {
  if (!current) return;
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  const c = chat(current);
  const list = [...c.msgs.values()].filter(m => m.type !== 'recall' && m.type !== 'edit').sort((a, b) => a.seq - b.seq);
  const ownRead = dmPeer(current, me) ? Math.max(0, ...list.filter(m => m.from === me && m.seq <= c.peerRead).map(m => m.seq)) : 0;
  const nodes = list.map(m => messageNode(m, c, m.seq === ownRead));
  for (const p of client.pending(current)) {
    if (p.kind !== 'send') continue;
    nodes.push(el('div', { class: 'msg me pending', 'data-testid': 'msg', 'data-cmid': p.cmid }, el('div', { class: 'body', 'data-testid': 'msg-body' }, ...bodyNodes(p.body)), el('div', { class: 'meta' }, 'sending…')));
  }
  if (c.more && c.oldest > 1) nodes.unshift(el('div', { class: 'older' }, 'scroll up for older messages'));
  box.replaceChildren(...nodes);
  if (stickToBottom || atBottom) box.scrollTop = box.scrollHeight;
}

function messageNode(m, c, seenHere) {
  if (m.type === 'system') {
    return el('div', { class: 'msg system', 'data-testid': 'msg', 'data-seq': m.seq }, systemText(m));
  }
  const mine = m.from === me;
  const mentioned = !mine && (m.mentions?.includes(me) || m.mentions?.includes('@all'));
  const cls = ['msg', mine ? 'me' : 'other', m.recalled && 'recalled', m.edited && 'edited', mentioned && 'mention'].filter(Boolean).join(' ');
  const node = el('div', { class: cls, 'data-testid': 'msg', 'data-seq': m.seq, 'data-from': m.from });
  if (!mine) node.append(el('div', { class: 'from' }, m.from));
  node.append(el('div', { class: 'body', 'data-testid': 'msg-body' }, ...(m.recalled ? ['message recalled'] : bodyNodes(m.body ?? ''))));
  const meta = el('div', { class: 'meta' }, new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  if (m.edited && !m.recalled) meta.append(' · edited');
  if (seenHere) meta.append(el('span', { class: 'seen', 'data-testid': 'read-marker' }, ' · seen'));
  node.append(meta);
  if (!m.recalled && (mine || c.owner === me)) node.append(messageMenu(m, mine));
  return node;
}

function messageMenu(m, mine) {
  const menu = el('details', { class: 'menu' }, el('summary', { 'data-testid': 'msg-menu', title: 'actions' }, '⋯'));
  if (mine) {
    const edit = el('button', { 'data-testid': 'msg-edit' }, 'edit');
    edit.onclick = () => startEdit(m);
    menu.append(edit);
  }
  const recall = el('button', { 'data-testid': 'msg-recall' }, 'recall');
  recall.onclick = async () => {
    try {
      await client.recall(m.conv, m.seq);
    } catch (err) {
      showError(err);
    }
  };
  menu.append(recall);
  return menu;
}

function startEdit(m) {
  editing = { conv: m.conv, seq: m.seq };
  $('edit-bar').hidden = false;
  $('composer-input').value = m.body;
  $('composer-send').textContent = 'save';
  $('composer-input').focus();
}

function stopEdit() {
  editing = null;
  $('edit-bar').hidden = true;
  $('composer-send').textContent = 'send';
  $('composer-input').value = '';
}

// ---- composer -------------------------------------------------------------------------

$('composer').onsubmit = async e => {
  e.preventDefault();
  const input = $('composer-input');
  const text = input.value.trim();
  if (!text) {
    showError(new Error('an empty message is not sent'));
    return;
  }
  if (editing) {
    const { conv, seq } = editing;
    stopEdit();
    try {
      await client.edit(conv, seq, text);
    } catch (err) {
      showError(err);
    }
    return;
  }
  input.value = '';
  const conv = current;
  const mentions = mentionsIn(text);
  client.send(conv, text, mentions.length ? { mentions } : {}).catch(() => {}); // failures come as 'send_failed'
  renderMessages(true);
};

$('composer-input').addEventListener('keydown', e => {
  if (e.key === 'Escape' && editing) stopEdit();
});

$('composer-input').addEventListener('input', () => {
  // one typing frame every 2 s at most while keys are pressed
  if (!current || editing || Date.now() - lastTypingSent < 2000) return;
  lastTypingSent = Date.now();
  client.typing(current);
});

// ---- tiny DOM helper --------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

// ---- boot ---------------------------------------------------------------------------------

const saved = savedLogin();
$('login-device').value = saved?.device ?? defaultDevice();
if (saved?.user) {
  $('login-user').value = saved.user;
  $('login-token').value = saved.token ?? '';
  if (params.get('autologin') !== '0') start(saved);
}
if (params.get('user')) $('login-user').value = params.get('user');
