'use strict';
// imengine driver for the shared peers kit (../shared/peers/client).
//
// bench/compare.sh deploys the kit, renames the deployed client/drivers.js to drivers-kit.js and
// installs this file in its place. Everything of the kit is re-exported unchanged; xmppConnect()
// is wrapped: when the URL carries the marker "?imengine" (e.g. ws://127.0.0.1:8090/ws?imengine)
// or IMENGINE=1 is in the environment, it returns an imengine client with the kit's interface, so
// the kit's own scripts (bench.js, fanout.js, offline.js, idle.js), which pick
// `proto === 'mqtt' ? mqttConnect : xmppConnect`, drive imengine unchanged.
//
// Mapping (imengine wire protocol v1, docs/PROTOCOL.md, JSON text frames, --auth=none):
//   connect(user)          auth {user, device:"bench"}; if auth_ok.iseq > 0 the inbox is pulled with
//                          `sync` pages (IMENGINE_SYNC_LIMIT, default 1000) and the last page acked.
//                          Messages that arrive before onMessage is set are buffered (like the kit's
//                          MQTT driver), so offline.js's "login -> all delivered" includes the sync.
//   send(to, body)         send {conv:"dm:<a>:<b>", cmid} ; server `ack` (after commit: fsync'd with
//                          --sync=full) -> onAck(total acks so far)
//   onMessage(from, body)  pushes `msg` with iseq (inbox) are acked cumulatively once per event-loop
//                          turn; the sender's own echo, `system` messages (joins, group changes) and
//                          duplicates (same conv+seq) are acked but not passed on.
//   joinRoom(room)         join {conv:"r:<room>"} (an open room: anyone joins, one shared timeline,
//                          stored once per message -- the analogue of an XMPP MUC with MAM)
//   groupSend(room, _, b)  send to "r:<room>"
//   raw(), flushAck()      no-ops (XMPP-specific)
const WebSocket = require('ws');
const kit = require('./drivers-kit');

const SYNC_LIMIT = +(process.env.IMENGINE_SYNC_LIMIT || 1000);
const TAG = process.pid.toString(36) + Date.now().toString(36); // cmids unique across runs

function isImengine(url) {
  return process.env.IMENGINE === '1' || /[?&]imengine(=|&|$)/.test(String(url));
}

class ImengineClient {
  constructor(ws, user) {
    this.ws = ws; this.user = user;
    this.sent = 0; this.acked = 0; this.errors = 0;
    this.onAck = null; this._onMessage = null; this.early = [];
    this.seen = new Set(); this.topIseq = 0; this.ackedIseq = 0; this.ackPending = false;
    this.req = 1; this.waits = new Map();
  }
  get onMessage() { return this._onMessage; }
  set onMessage(f) {
    this._onMessage = f;
    if (f) while (this.early.length) { const [a, b] = this.early.shift(); f(a, b); }
  }
  _send(obj) { this.ws.send(JSON.stringify(obj)); }
  _request(obj) {
    const req = ++this.req;
    obj.req = req;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waits.delete(req); reject(new Error(`imengine ${obj.t} timeout for ${this.user}`)); }, 20000);
      this.waits.set(req, { resolve, reject, t });
      this._send(obj);
    });
  }
  send(toUser, body) {
    const conv = this.user < toUser ? `dm:${this.user}:${toUser}` : `dm:${toUser}:${this.user}`;
    this.sent++;
    this._send({ t: 'send', req: ++this.req, cmid: `${TAG}-${this.sent}`, conv, body });
  }
  flushAck() {}
  raw() {}
  joinRoom(room) { return this._request({ t: 'join', conv: 'r:' + room }); }
  groupSend(room, _service, body) {
    this.sent++;
    this._send({ t: 'send', req: ++this.req, cmid: `${TAG}-${this.sent}`, conv: 'r:' + room, body });
  }
  _deliver(m) {
    if (m.iseq) {
      if (m.iseq > this.topIseq) this.topIseq = m.iseq;
      this._scheduleAck();
    }
    const key = m.conv + ':' + m.seq;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (m.type === 'system' || m.from === this.user) return;
    if (this._onMessage) this._onMessage(m.from, m.body);
    else this.early.push([m.from, m.body]);
  }
  _scheduleAck() {
    if (this.ackPending) return;
    this.ackPending = true;
    setImmediate(() => {
      this.ackPending = false;
      if (this.topIseq > this.ackedIseq && this.ws.readyState === WebSocket.OPEN) {
        this.ackedIseq = this.topIseq;
        this._send({ t: 'ack', iseq: this.topIseq });
      }
    });
  }
  _frame(f) {
    switch (f.t) {
      case 'msg': this._deliver(f); break;
      case 'ack':
        if (f.req !== undefined && f.cmid !== undefined) {
          this.acked++;
          if (this.onAck) this.onAck(this.acked);
        }
        break;
      case 'sync_result': {
        for (const m of f.msgs) this._deliver(m);
        const last = f.msgs.length ? f.msgs[f.msgs.length - 1].iseq : this.topIseq;
        if (f.more) this._send({ t: 'sync', req: ++this.req, after: last, limit: SYNC_LIMIT });
        break;
      }
      case 'ok': case 'error': {
        const w = this.waits.get(f.req);
        if (w) {
          this.waits.delete(f.req); clearTimeout(w.t);
          if (f.t === 'ok') w.resolve(f); else w.reject(new Error(`imengine ${f.code}: ${f.msg}`));
        } else if (f.t === 'error') {
          this.errors++;
          if (this.errors <= 3) process.stderr.write(`imengine error for ${this.user}: ${JSON.stringify(f)}\n`);
        }
        break;
      }
      default: break; // receipt, read, notify, presence, pong ...
    }
  }
  close() { try { this.ws.close(1000); } catch (e) {} setTimeout(() => this.ws.terminate(), 100); }
}

function imengineConnect(user, opts) {
  const u = new URL(opts.url);
  kit.assertLoopback(opts.url);
  u.search = ''; // the engine serves exactly /ws
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(u.toString(), { perMessageDeflate: false });
    let client = null;
    const t = setTimeout(() => { reject(new Error('imengine login timeout for ' + user)); ws.terminate(); }, 20000);
    ws.on('error', (e) => { clearTimeout(t); if (!client) reject(e); });
    ws.on('open', () => ws.send(JSON.stringify({ t: 'auth', req: 1, user, device: 'bench', token: '' })));
    ws.on('message', (data) => {
      let f;
      try { f = JSON.parse(data.toString()); } catch (e) { return; }
      if (client) return client._frame(f);
      if (f.t === 'auth_ok') {
        clearTimeout(t);
        client = new ImengineClient(ws, user);
        // pull what is already in the inbox (offline messages); live pushes start after f.iseq
        if (f.iseq > 0) client._send({ t: 'sync', req: ++client.req, after: 0, limit: SYNC_LIMIT });
        resolve(client);
      } else if (f.t === 'error') {
        clearTimeout(t); reject(new Error('imengine auth failed: ' + JSON.stringify(f)));
      }
    });
  });
}

function xmppConnect(user, opts) {
  return isImengine(opts && opts.url) ? imengineConnect(user, opts) : kit.xmppConnect(user, opts);
}

module.exports = { ...kit, xmppConnect, imengineConnect, isImengine };
