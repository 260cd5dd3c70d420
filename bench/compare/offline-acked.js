'use strict';
// W3 variant for bench/compare.sh. The kit's offline.js gives an XMPP server a fixed 3 s after the
// last send before the recipient logs in, so when the server stores offline messages more slowly
// than that, its "login -> all delivered" time also contains the storing backlog. Here the sender
// waits until the server has acknowledged all K messages (XMPP XEP-0198 <a h=K/>, MQTT QoS1 PUBACK,
// imengine `ack` after commit), then the recipient logs in: the time is delivery only.
// Same output fields as the kit's offline.js, plus `acked_before_login` and `mode`.
//   node offline-acked.js --proto P --url U --k 5000 --prefix X
const { xmppConnect, mqttConnect } = require('./drivers');
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, arr) => {
  if (v.startsWith('--')) a.push([v.slice(2), arr[i + 1] && !arr[i + 1].startsWith('--') ? arr[i + 1] : 'true']);
  return a;
}, []));
const proto = args.proto || 'xmpp', url = args.url, K = +(args.k || 5000), W = +(args.window || 200);
const tag = args.prefix || ('o' + (Date.now() % 100000));
const timeoutS = +(args.timeout || 180);
const connect = (u, extra) => (proto === 'mqtt' ? mqttConnect(u, { url }) : xmppConnect(u, { url, domain: 'localhost', ...extra }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  setTimeout(() => { console.log(JSON.stringify({ proto, url, k: K, status: 'TIMEOUT' })); process.exit(2); }, timeoutS * 1000).unref();
  const rcv0 = await connect(tag + 'r'); rcv0.close(); await sleep(500);
  const snd = await connect(tag + 's', { sm: true });
  let acked = 0, sent = 0, allAcked;
  const acks = new Promise((r) => (allAcked = r));
  const pump = () => {
    while (sent < K && sent - acked < W) { snd.send(tag + 'r', `${sent} offline message body ${'x'.repeat(60)}`); sent++; }
    if (sent === K && snd.flushAck) snd.flushAck();
  };
  snd.onAck = (n) => { if (n > acked) acked = n; if (acked >= K) allAcked(); else pump(); };
  // XMPP: the kit driver asks <r/> every 10 messages; a last one goes out once all K are sent
  const t0 = Date.now();
  pump();
  await acks;
  const sendMs = Date.now() - t0;
  let got = 0, done; const fin = new Promise((r) => (done = r));
  const t1 = process.hrtime.bigint();
  const rcv = await connect(tag + 'r');
  rcv.onMessage = () => { got++; if (got === K) done(); };
  const timer = setTimeout(() => done('timeout'), 60000);
  const why = await fin; clearTimeout(timer);
  const ms = Number(process.hrtime.bigint() - t1) / 1e6;
  console.log(JSON.stringify({ proto, url, k: K, mode: 'after-all-acked', status: why ? 'TIMEOUT' : 'ok', delivered: got,
    acked_before_login: acked, send_phase_ms: sendMs, login_to_all_delivered_ms: Math.round(ms), msgs_per_s: Math.round(got / (ms / 1000)) }));
  snd.close(); rcv.close(); setTimeout(() => process.exit(0), 300);
})().catch((e) => { console.error('FAILED', e.message); process.exit(1); });
