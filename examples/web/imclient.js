// imclient.js — the client side of the imengine wire protocol (docs/PROTOCOL.md).
//
// One ES module, no dependencies, no build step: it runs in browsers and in
// Node >= 20. Node passes its own WebSocket constructor and storage object.
//
//   const c = new IMClient({url, user, device, token, WebSocket, storage});
//   c.on('msg', m => ...); await c.connect();
//   const ack = await c.send('dm:alice:bob', 'hi');
//
// What it takes care of, so the application does not have to:
// - reconnect with capped exponential backoff and jitter, re-auth, catch up;
// - an outbox of unacked sends (kept in storage across page reloads), resent
//   after a reconnect with the same cmid, in the order they were made;
// - inbox (iseq) and per-conversation (seq) ordering: duplicates dropped,
//   gaps filled with `sync` / `history`, cumulative and coalesced acks;
// - requests matched to replies by `req`, rejected on `error` and on timeout.

/** Auth errors that a retry cannot fix: stop reconnecting. */
const TERMINAL_AUTH = new Set(['unauthorized', 'forbidden', 'bad_frame']);
/** Send errors worth a retry with the same cmid (dedupe makes it safe). */
const TRANSIENT = new Set(['unavailable', 'overloaded', 'rate_limited', 'storage', 'internal']);
/** Close code of a connection replaced by a newer one of the same (user, device). */
const CLOSE_REPLACED = 4001;

const DEFAULTS = {
  requestTimeoutMs: 10000, // a request without a reply by then rejects with code 'timeout'
  sendAckTimeoutMs: 10000, // a send without an ack by then is written again (same cmid)
  sendMaxRetries: 20, // transient send errors retried this often, then the send fails
  connectTimeoutMs: 10000, // socket open + auth
  backoffBaseMs: 500,
  backoffMaxMs: 15000,
  ackDelayMs: 50, // pushes arriving within this window share one cumulative ack
  syncLimit: 100,
  historyLimit: 50,
  fillMaxPages: 100, // bound on the pages one gap fill pulls
  pingMs: 20000, // idle this long → we ping; idle pingMs + pongTimeoutMs → we reconnect
  pongTimeoutMs: 10000,
  maxFrameBytes: 65536, // the engine's --max-frame: a larger send is refused here, not retried forever
};

/** The dm id of two users: `dm:<a>:<b>` with a < b bytewise (ids are ASCII). */
export function dmId(a, b) {
  if (!a || !b || a === b) throw new IMError('bad_frame', 'a dm needs two different users');
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** The other user of a dm, or null for groups and rooms. */
export function dmPeer(conv, me) {
  const m = /^dm:([^:]+):([^:]+)$/.exec(conv);
  if (!m) return null;
  return m[1] === me ? m[2] : m[1];
}

/** The kind of a conversation id: 'dm', 'group', 'room' or null. */
export function convKind(conv) {
  if (conv.startsWith('dm:')) return 'dm';
  if (conv.startsWith('g:')) return 'group';
  if (conv.startsWith('r:')) return 'room';
  return null;
}

export class IMError extends Error {
  constructor(code, msg, frame) {
    super(`${code}: ${msg ?? ''}`);
    this.code = code;
    this.frame = frame;
  }
}

/** localStorage behind the {get, set} interface; a Map when there is none. */
function defaultStorage() {
  try {
    const ls = globalThis.localStorage;
    if (ls) return { get: k => ls.getItem(k), set: (k, v) => ls.setItem(k, v) };
  } catch { /* storage may be disabled */ }
  const m = new Map();
  return { get: k => m.get(k), set: (k, v) => m.set(k, v) };
}

function randomId() {
  const b = new Uint8Array(9);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
}

export class IMClient {
  constructor({ url, user, device, token = '', WebSocket, storage, ...opts }) {
    this.url = url;
    this.user = user;
    this.device = device;
    this.token = token;
    this.state = 'idle'; // idle | connecting | online | offline | closed
    this.node = null;
    this.opts = { ...DEFAULTS, ...opts };
    this._WS = WebSocket ?? globalThis.WebSocket;
    this._store = storage ?? defaultStorage();
    this._handlers = new Map();

    this._ws = null;
    this._req = 0;
    this._pending = new Map(); // req -> {resolve, reject, timer, soft}
    this._waiting = []; // requests made while not online: sent after auth
    this._stopped = true;
    this._attempt = 0; // reconnect attempts since the last auth_ok
    this._timers = new Set();

    // Outbox: sends not acked yet, in the order they were made. Persisted.
    this._outbox = this._load('outbox', []);
    this._order = this._outbox.reduce((m, it) => Math.max(m, it.order), 0);
    this._deferreds = new Map(); // cmid -> {resolve, reject}: this page's own sends

    // Inbox: highest contiguous iseq delivered; what we acked last (persisted).
    this._iseq = this._load('iseq', null);
    this._ackedIseq = this._iseq;
    this._ackTimer = null;
    this._inbuf = new Map(); // iseq -> msg that arrived ahead of a gap
    this._syncing = false;
    this._syncRetries = 0;

    // Conversations: highest contiguous seq delivered, messages held ahead of
    // a gap, which ones are timelines (pushed without iseq), fills in flight.
    this._top = new Map();
    this._hold = new Map();
    this._timeline = new Set();
    this._filling = new Set();

    this._reads = new Map(); // conv -> read seq not written yet (offline)
    this._readSent = new Map();
    this._presence = new Set(); // users subscribed to, again after reconnects
  }

  // ---- events --------------------------------------------------------------

  /** Subscribe to an event ('msg', 'state', ...; '*' gets all). Returns the unsubscribe. */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this._handlers.get(type)?.delete(fn);
  }

  _emit(type, data) {
    for (const key of [type, '*']) {
      for (const fn of this._handlers.get(key) ?? []) {
        try {
          fn(data, type);
        } catch (e) {
          // one broken handler must not stop the protocol machinery
          globalThis.console?.error?.('imclient handler', type, e);
        }
      }
    }
  }

  _setState(state, detail) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', { state, ...detail });
  }

  // ---- storage -------------------------------------------------------------

  _key(name) {
    return `imclient:${this.user}:${this.device}:${name}`;
  }

  _load(name, fallback) {
    try {
      const v = this._store.get(this._key(name));
      return v == null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  }

  _save(name, value) {
    try {
      this._store.set(this._key(name), JSON.stringify(value));
    } catch { /* quota or disabled storage: keep working from memory */ }
  }

  _saveOutbox() {
    this._save('outbox', this._outbox);
  }

  // ---- connection ----------------------------------------------------------

  /** Start (or restart) connecting; resolves at the first auth_ok, rejects on a terminal failure. */
  connect() {
    this._stopped = false;
    const p = new Promise((resolve, reject) => {
      const off = this.on('state', ({ state, error }) => {
        if (state === 'online') {
          off();
          resolve(this);
        } else if (state === 'closed') {
          off();
          reject(error ?? new IMError('closed', 'client closed'));
        }
      });
    });
    if (!this._ws && this.state !== 'connecting') this._open();
    this._watchNetwork();
    return p;
  }

  /** Close for good: no reconnect. The outbox stays in storage. */
  close() {
    this._stopped = true;
    this._unwatchNetwork?.();
    this._drop('closed by client');
    for (const e of this._timers) clearTimeout(e.t); // a reconnect may be scheduled
    this._timers.clear();
    for (const w of this._waiting) {
      clearTimeout(w.timer);
      w.reject(new IMError('closed', 'client closed', w.frame));
    }
    this._waiting = [];
    for (const [cmid, d] of this._deferreds) {
      const err = new IMError('closed', 'client closed; the send stays in the stored outbox');
      err.pending = true;
      d.reject(err);
      this._deferreds.delete(cmid);
    }
    this._setState('closed');
  }

  /** Drop the current socket now and reconnect (e.g. after the network came back). */
  reconnectNow() {
    if (this._stopped) return;
    this._attempt = 0;
    if (this._ws) this._drop('reconnect requested');
    else {
      this._clearTimer('reconnect');
      this._open();
    }
  }

  _open() {
    this._clearTimer('reconnect');
    this._setState('connecting');
    let ws;
    try {
      ws = new this._WS(this.url);
    } catch (e) {
      this._scheduleReconnect(e);
      return;
    }
    this._ws = ws;
    this._lastRx = Date.now();
    this._later('connect', this.opts.connectTimeoutMs, () => this._drop('connect timeout'));
    ws.onopen = () => this._auth();
    ws.onmessage = e => this._onData(e.data);
    ws.onerror = () => {}; // a close event follows
    ws.onclose = e => {
      if (this._ws === ws) this._onClosed(e.code, e.reason);
    };
  }

  _auth() {
    const frame = { t: 'auth', user: this.user, device: this.device, token: this.token };
    this._write(frame, { timeoutMs: this.opts.connectTimeoutMs }).then(
      f => this._onOnline(f),
      err => {
        if (TERMINAL_AUTH.has(err.code)) {
          this._stopped = true;
          this._drop('auth failed');
          this._setState('closed', { error: err });
        } else this._drop(`auth: ${err.code}`);
      },
    );
  }

  /** Forget the socket at once (do not wait for a close handshake a dead network never completes). */
  _drop(reason) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000, reason.slice(0, 100));
    } catch { /* already closing */ }
    this._onClosed(1006, reason);
  }

  _onClosed(code, reason) {
    this._ws = null;
    this._clearTimer('connect');
    this._clearTimer('ping');
    clearTimeout(this._ackTimer);
    this._ackTimer = null;
    this._syncing = false;
    this._filling.clear();
    for (const [req, p] of this._pending) {
      this._pending.delete(req);
      clearTimeout(p.timer);
      if (!p.soft) p.reject(new IMError('disconnected', `connection closed (${code})`));
    }
    if (this._stopped) return;
    if (code === CLOSE_REPLACED) {
      // Another tab or device with the same id took over: reconnecting would fight it.
      this._stopped = true;
      this._setState('closed', { code, error: new IMError('replaced', reason || 'replaced') });
      return;
    }
    this._scheduleReconnect(null, code, reason);
  }

  _scheduleReconnect(error, code, reason) {
    const { backoffBaseMs, backoffMaxMs } = this.opts;
    const cap = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(this._attempt, 16));
    const delay = cap / 2 + Math.random() * (cap / 2); // jitter: spread a crowd of reconnects
    this._attempt++;
    this._setState('offline', { code, reason, retryInMs: Math.round(delay), error });
    this._later('reconnect', delay, () => this._open());
  }

  _onOnline(f) {
    this._clearTimer('connect');
    this._attempt = 0;
    this.node = f.node;
    const head = f.iseq;
    // A fresh device starts at the head (the app loads history per conversation);
    // a head behind what we acked means the server's data was reset.
    if (this._iseq == null || this._iseq > head) {
      this._iseq = head;
      this._ackedIseq = head;
      this._inbuf.clear();
      this._save('iseq', head);
    }
    this._setState('online', { node: f.node, iseq: head });
    this._startPing();

    // In the order the user made them: unacked sends and requests made offline.
    const work = [
      ...this._outbox.map(item => ({ order: item.order, run: () => this._writeSend(item) })),
      ...this._waiting.map(w => ({ order: w.order, run: () => this._writeWaiting(w) })),
    ].sort((a, b) => a.order - b.order);
    this._waiting = [];
    for (const w of work) w.run();

    if (this._presence.size) this._fire({ t: 'presence_sub', users: [...this._presence] });
    for (const [conv, seq] of this._reads) this._fire({ t: 'read', conv, seq });
    this._reads.clear();
    if (this._iseq < head) this._startSync();
    // Timeline pushes missed while away are only in the timelines.
    for (const conv of this._timeline) if (this._top.has(conv)) this._fill(conv);
  }

  _startPing() {
    const { pingMs, pongTimeoutMs } = this.opts;
    const tick = () => {
      const idle = Date.now() - this._lastRx;
      if (idle >= pingMs + pongTimeoutMs) return this._drop('no answer to ping');
      if (idle >= pingMs) this._fire({ t: 'ping' });
      this._later('ping', Math.max(50, pingMs / 2), tick);
    };
    this._later('ping', Math.max(50, pingMs / 2), tick);
  }

  /** Browsers tell when the network goes away and comes back: act at once. */
  _watchNetwork() {
    const g = globalThis;
    if (this._unwatchNetwork || typeof g.addEventListener !== 'function' || !g.navigator) return;
    const offline = () => this._ws && this._drop('network offline');
    const online = () => this.state === 'offline' && this.reconnectNow();
    g.addEventListener('offline', offline);
    g.addEventListener('online', online);
    this._unwatchNetwork = () => {
      g.removeEventListener('offline', offline);
      g.removeEventListener('online', online);
      this._unwatchNetwork = null;
    };
  }

  _later(name, ms, fn) {
    this._clearTimer(name);
    const t = setTimeout(() => {
      this._timers.delete(entry);
      fn();
    }, ms);
    const entry = { name, t };
    this._timers.add(entry);
  }

  _clearTimer(name) {
    for (const e of this._timers) {
      if (e.name === name) {
        clearTimeout(e.t);
        this._timers.delete(e);
      }
    }
  }

  // ---- writing frames and matching replies ---------------------------------

  _raw(frame) {
    this._ws.send(JSON.stringify(frame));
  }

  /** Write a request on the open socket; the Promise settles with its reply. */
  _write(frame, { timeoutMs = this.opts.requestTimeoutMs, deadline } = {}) {
    return new Promise((resolve, reject) => {
      const req = ++this._req;
      const left = deadline ? deadline - Date.now() : timeoutMs;
      const timer = setTimeout(() => {
        this._pending.delete(req);
        reject(new IMError('timeout', `no reply to ${frame.t} in ${timeoutMs} ms`, frame));
      }, Math.max(0, left));
      this._pending.set(req, { resolve, reject, timer });
      this._raw({ ...frame, req });
    });
  }

  /**
   * A frame whose success has no reply (read, typing, presence_sub, ack is
   * different: no req at all). It still carries a req so an `error` can be
   * told apart and surfaced as an 'error' event.
   */
  _fire(frame) {
    if (this.state !== 'online' || !this._ws) return false;
    const req = ++this._req;
    const timer = setTimeout(() => this._pending.delete(req), this.opts.requestTimeoutMs);
    this._pending.set(req, {
      soft: true,
      timer,
      resolve: () => {},
      reject: err => this._emit('error', err),
    });
    this._raw({ ...frame, req });
    return true;
  }

  /** A request: sent now when online, else when the next auth succeeds. */
  request(frame, { timeoutMs = this.opts.requestTimeoutMs } = {}) {
    if (this._stopped && this.state === 'closed') {
      return Promise.reject(new IMError('closed', 'client closed', frame));
    }
    if (this.state === 'online') return this._write(frame, { timeoutMs });
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const w = { frame, resolve, reject, deadline, order: ++this._order };
      w.timer = setTimeout(() => {
        this._waiting = this._waiting.filter(x => x !== w);
        reject(new IMError('timeout', `offline: ${frame.t} not sent in ${timeoutMs} ms`, frame));
      }, timeoutMs);
      this._waiting.push(w);
    });
  }

  _writeWaiting(w) {
    clearTimeout(w.timer);
    this._write(w.frame, { deadline: w.deadline }).then(w.resolve, w.reject);
  }

  _onData(data) {
    this._lastRx = Date.now();
    let f;
    try {
      f = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      return; // the engine speaks JSON to a JSON client; ignore what is not
    }
    if (f.req != null && this._pending.has(f.req)) {
      const p = this._pending.get(f.req);
      this._pending.delete(f.req);
      clearTimeout(p.timer);
      if (f.t === 'error') p.reject(new IMError(f.code, f.msg, f));
      else p.resolve(f);
      return;
    }
    switch (f.t) {
      case 'msg':
        return f.iseq != null ? this._onInbox(f) : this._onTimeline(f);
      case 'ack':
        return this._onLateAck(f);
      case 'notify':
        this._emit('notify', f);
        if (this._top.has(f.conv)) this._fill(f.conv);
        return;
      case 'error':
        return this._emit('error', new IMError(f.code, f.msg, f));
      case 'pong':
        return;
      default:
        // read, receipt, typing, presence, mute, mention, and whatever comes later
        return this._emit(f.t, f);
    }
  }

  // ---- sending (uplink) ----------------------------------------------------

  /**
   * Send a message. Resolves with the engine's `ack` ({seq, mid, ts, dup?}).
   * The message is kept in the outbox (and storage) until acked, and written
   * again with the same cmid after reconnects. Rejects on an error a retry
   * cannot fix (forbidden, not_found, rejected, ...), then it leaves the outbox.
   * With `timeoutMs` the Promise rejects with 'timeout' after that long; the
   * message stays in the outbox and a later ack comes as a 'sent' event.
   */
  send(conv, body, { type = 'text', ex, mentions, prio, timeoutMs } = {}) {
    const item = {
      kind: 'send',
      cmid: `${this.device.slice(0, 20)}-${randomId()}`,
      conv,
      body,
      type,
      order: ++this._order,
      ts: Date.now(),
    };
    if (ex) item.ex = ex;
    if (mentions?.length) item.mentions = mentions;
    if (prio) item.prio = prio;
    return this._enqueue(item, timeoutMs);
  }

  /** Send messages atomically (consecutive seqs); resolves with `ack_batch`. */
  sendBatch(conv, msgs, { timeoutMs } = {}) {
    const item = {
      kind: 'batch',
      cmid: `${this.device.slice(0, 20)}-${randomId()}`, // the outbox's key only
      conv,
      msgs: msgs.map(m => ({ cmid: `${this.device.slice(0, 20)}-${randomId()}`, type: 'text', ...m })),
      order: ++this._order,
      ts: Date.now(),
    };
    return this._enqueue(item, timeoutMs);
  }

  _enqueue(item, timeoutMs) {
    const bytes = new TextEncoder().encode(JSON.stringify(this._frameOf(item))).length;
    if (bytes > this.opts.maxFrameBytes)
      return Promise.reject(new IMError('too_large', `the frame would be ${bytes} bytes, over ${this.opts.maxFrameBytes}`));
    this._outbox.push(item);
    this._saveOutbox();
    const p = new Promise((resolve, reject) => this._deferreds.set(item.cmid, { resolve, reject }));
    this._emit('outbox', { added: item });
    if (this.state === 'online') this._writeSend(item);
    if (timeoutMs == null) return p;
    let timer;
    const t = new Promise((_, reject) => {
      timer = setTimeout(() => {
        const err = new IMError('timeout', `no ack in ${timeoutMs} ms; still queued`, item);
        err.pending = true;
        reject(err);
      }, timeoutMs);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** Unacked sends (e.g. to show after a reload), optionally of one conversation. */
  pending(conv) {
    return this._outbox.filter(it => conv == null || it.conv === conv).map(it => ({ ...it }));
  }

  /** Forget an unacked send (it may still have been committed if it was written). */
  discard(cmid) {
    const before = this._outbox.length;
    this._outbox = this._outbox.filter(it => it.cmid !== cmid);
    if (this._outbox.length === before) return false;
    this._saveOutbox();
    this._deferreds.get(cmid)?.reject(new IMError('discarded', 'discarded by the client'));
    this._deferreds.delete(cmid);
    this._emit('outbox', { removed: cmid });
    return true;
  }

  _frameOf(item) {
    return item.kind === 'batch'
      ? { t: 'send_batch', conv: item.conv, msgs: item.msgs }
      : {
          t: 'send',
          cmid: item.cmid,
          conv: item.conv,
          type: item.type,
          body: item.body,
          ...(item.ex && { ex: item.ex }),
          ...(item.mentions && { mentions: item.mentions }),
          ...(item.prio && { prio: item.prio }),
        };
  }

  _writeSend(item) {
    if (this.state !== 'online' || !this._outbox.includes(item)) return;
    const frame = this._frameOf(item);
    const ws = this._ws;
    this._write(frame, { timeoutMs: this.opts.sendAckTimeoutMs }).then(
      ack => this._onSendAck(item, ack),
      err => {
        if (err.code === 'disconnected') return; // resent after the reconnect
        if (err.code === 'timeout') {
          if (this._ws !== ws) return;
          // No ack: the protocol's answer is the same frame again (same cmid);
          // a connection that keeps not answering is treated as dead.
          item.timeouts = (item.timeouts ?? 0) + 1;
          if (item.timeouts >= 3) {
            item.timeouts = 0;
            this._drop('sends not acknowledged');
          } else this._writeSend(item);
          return;
        }
        if (TRANSIENT.has(err.code) && (item.retries ?? 0) < this.opts.sendMaxRetries) {
          item.retries = (item.retries ?? 0) + 1;
          const ms = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** Math.min(item.retries, 10));
          setTimeout(() => this._writeSend(item), ms * (0.5 + Math.random() / 2));
          return;
        }
        this._finishSend(item, null, err);
      },
    );
  }

  /** An ack whose req we no longer wait for (an earlier write's): match it by cmid. */
  _onLateAck(f) {
    const item = this._outbox.find(it => it.kind === 'send' && it.cmid === f.cmid);
    if (item) this._onSendAck(item, f);
  }

  _onSendAck(item, ack) {
    if (!this._outbox.includes(item)) return; // acked already (a resend's dup)
    this._finishSend(item, ack, null);
  }

  _finishSend(item, ack, err) {
    this._outbox = this._outbox.filter(it => it !== item);
    this._saveOutbox();
    const d = this._deferreds.get(item.cmid);
    this._deferreds.delete(item.cmid);
    if (ack) {
      this._emit('sent', { item, ack });
      d?.resolve(ack);
    } else {
      this._emit('send_failed', { item, error: err });
      d?.reject(err);
    }
    this._emit('outbox', { removed: item.cmid });
  }

  // ---- receiving (downlink) ------------------------------------------------

  _onInbox(m) {
    if (m.iseq <= this._iseq) {
      this._scheduleAck(true); // a retransmit: the server missed our ack
      return;
    }
    if (m.iseq === this._iseq + 1) {
      this._iseq = m.iseq;
      this._deliver(m);
      this._drainInbox();
      this._scheduleAck();
    } else {
      this._inbuf.set(m.iseq, m);
      this._startSync();
    }
  }

  _drainInbox() {
    while (this._inbuf.has(this._iseq + 1)) {
      const m = this._inbuf.get(this._iseq + 1);
      this._inbuf.delete(this._iseq + 1);
      this._iseq = m.iseq;
      this._deliver(m);
    }
    for (const k of this._inbuf.keys()) if (k <= this._iseq) this._inbuf.delete(k);
  }

  /** Pull the inbox after the last contiguous iseq until the server says no more. */
  async _startSync() {
    if (this._syncing || this.state !== 'online') return;
    this._syncing = true;
    const ws = this._ws;
    try {
      for (let page = 0; page < this.opts.fillMaxPages; page++) {
        const after = this._iseq;
        const r = await this._write({ t: 'sync', after, limit: this.opts.syncLimit });
        if (this._ws !== ws) return;
        for (const m of r.msgs) this._onInbox(m);
        const last = r.msgs.length ? r.msgs[r.msgs.length - 1].iseq : after;
        if (!r.more || last <= after) break;
      }
      this._syncing = false;
      this._drainInbox();
      this._scheduleAck();
      if (this._inbuf.size) {
        // A push beyond what sync returned: its inbox copy was not listed yet.
        if (this._syncRetries++ < 20) this._later('sync', 100 * this._syncRetries, () => this._startSync());
      } else this._syncRetries = 0;
    } catch (err) {
      if (this._ws === ws) {
        this._syncing = false;
        this._emit('error', err);
        if (err.code !== 'disconnected' && this._syncRetries++ < 20) this._later('sync', 1000, () => this._startSync());
      }
    } finally {
      if (this._ws === ws) this._syncing = false;
    }
  }

  /** One cumulative ack for everything contiguous, shortly after a burst. */
  _scheduleAck(force = false) {
    if (force) this._forceAck = true;
    if (this._ackTimer) return;
    this._ackTimer = setTimeout(() => {
      this._ackTimer = null;
      if (this.state !== 'online' || !this._ws) return;
      if (this._iseq > this._ackedIseq || this._forceAck) {
        this._raw({ t: 'ack', iseq: this._iseq });
        this._ackedIseq = this._iseq;
        this._save('iseq', this._iseq);
        this._emit('acked', { iseq: this._iseq });
      }
      this._forceAck = false;
    }, this.opts.ackDelayMs);
  }

  _onTimeline(m) {
    this._timeline.add(m.conv);
    this._deliver(m);
  }

  /** Deliver in seq order per conversation: drop duplicates, hold and fill gaps. */
  _deliver(m) {
    const top = this._top.get(m.conv);
    if (top !== undefined && m.seq <= top) return;
    if (top !== undefined && m.seq > top + 1) {
      if (!this._hold.has(m.conv)) this._hold.set(m.conv, new Map());
      this._hold.get(m.conv).set(m.seq, m);
      this._fill(m.conv);
      return;
    }
    this._top.set(m.conv, m.seq);
    this._emitMsg(m);
    this._drainHold(m.conv);
  }

  _drainHold(conv) {
    const hold = this._hold.get(conv);
    if (!hold) return;
    let top = this._top.get(conv);
    while (hold.has(top + 1)) {
      const m = hold.get(top + 1);
      hold.delete(top + 1);
      top = m.seq;
      this._top.set(conv, top);
      this._emitMsg(m);
    }
    for (const k of hold.keys()) if (k <= top) hold.delete(k);
    if (!hold.size) this._hold.delete(conv);
  }

  _emitMsg(m) {
    this._emit('msg', m);
    if ((m.type === 'recall' || m.type === 'edit') && m.ex?.seq != null) {
      this._emit(m.type, { conv: m.conv, seq: m.ex.seq, body: m.body, by: m.from, msg: m });
    }
    if (m.mentions?.includes(this.user) || m.mentions?.includes('@all')) {
      if (m.from !== this.user) this._emit('mentioned', m);
    }
  }

  /** Fill a conversation's gap from the timeline: history after the last contiguous seq. */
  async _fill(conv) {
    if (this._filling.has(conv) || this.state !== 'online') return;
    this._filling.add(conv);
    const ws = this._ws;
    try {
      for (let page = 0; page < this.opts.fillMaxPages; page++) {
        const after = this._top.get(conv) ?? 0;
        const r = await this._write({ t: 'history', conv, after, limit: this.opts.historyLimit });
        if (this._ws !== ws) return;
        for (const m of r.msgs) this._deliver(m);
        if (!r.more || (this._top.get(conv) ?? 0) <= after) break;
      }
    } catch (err) {
      if (this._ws === ws) this._emit('error', err);
    } finally {
      if (this._ws === ws) this._filling.delete(conv);
    }
  }

  /** Tell the client what the app loaded, so later pushes of those seqs are duplicates. */
  _noteHistory(conv, r, newest) {
    if (!r.msgs.length) {
      if (newest && !this._top.has(conv)) this._top.set(conv, 0);
      return;
    }
    const seqs = r.msgs.map(m => m.seq);
    const max = Math.max(...seqs);
    const min = Math.min(...seqs);
    const top = this._top.get(conv);
    if ((top === undefined && newest) || (top !== undefined && min <= top + 1 && max > top)) {
      this._top.set(conv, max);
      this._drainHold(conv);
    }
  }

  // ---- requests ------------------------------------------------------------

  /** One page of the conversation list, most recent first. */
  convs({ limit = 50, cursor } = {}) {
    return this.request({ t: 'convs', limit, ...(cursor != null && { cursor }) });
  }

  /** Every page of the conversation list joined (bounded by maxPages). */
  async convsAll({ limit = 50, maxPages = 100 } = {}) {
    const all = [];
    let cursor;
    for (let i = 0; i < maxPages; i++) {
      const r = await this.convs({ limit, cursor });
      all.push(...r.convs);
      if (!r.more || !r.next) break;
      cursor = r.next;
    }
    return all;
  }

  /**
   * History of a conversation. Neither bound: the newest page (descending);
   * `before` descending, `after` ascending; bounds exclusive.
   */
  async history(conv, { before, after, limit = this.opts.historyLimit } = {}) {
    const f = { t: 'history', conv, limit };
    if (before != null) f.before = before;
    if (after != null) f.after = after;
    const r = await this.request(f);
    this._noteHistory(conv, r, before == null && after == null);
    return r;
  }

  /** Inbox page after an iseq (the client syncs by itself; this is for tools and tests). */
  sync({ after = 0, limit = this.opts.syncLimit } = {}) {
    return this.request({ t: 'sync', after, limit });
  }

  unread() {
    return this.request({ t: 'unread' });
  }

  /** Mark read up to seq; only forward, coalesced, queued while offline. */
  read(conv, seq) {
    if ((this._readSent.get(conv) ?? 0) >= seq) return;
    this._readSent.set(conv, seq);
    if (!this._fire({ t: 'read', conv, seq })) this._reads.set(conv, seq);
  }

  typing(conv) {
    return this._fire({ t: 'typing', conv });
  }

  /** Presence of users: 'presence' events now and on every change; kept across reconnects. */
  presenceSub(users) {
    const fresh = users.filter(u => !this._presence.has(u));
    for (const u of fresh) this._presence.add(u);
    if (fresh.length) this._fire({ t: 'presence_sub', users: fresh });
  }

  groupCreate(conv, members) {
    return this.request({ t: 'group_create', conv, members });
  }
  groupAdd(conv, members) {
    return this.request({ t: 'group_add', conv, members });
  }
  groupRemove(conv, members) {
    return this.request({ t: 'group_remove', conv, members });
  }
  groupInfo(conv) {
    return this.request({ t: 'group_info', conv });
  }
  join(conv) {
    return this.request({ t: 'join', conv });
  }
  leave(conv) {
    return this.request({ t: 'leave', conv });
  }
  mute(conv, on) {
    return this.request({ t: 'mute', conv, on: !!on });
  }
  /** Recall a message; resolves with `ok` carrying the recall message's seq. */
  recall(conv, seq) {
    return this.request({ t: 'recall', conv, seq });
  }
  /** Edit a message's body; resolves with `ok` carrying the edit message's seq. */
  edit(conv, seq, body) {
    return this.request({ t: 'edit', conv, seq, body });
  }
  ping() {
    return this.request({ t: 'ping' });
  }
}
