'use strict';
// W5 for bench/compare.sh: how many server-acknowledged messages survive a SIGKILL of the server.
// The kit has no such script; this one uses the kit's drivers (via ./drivers, i.e. our overlay) and
// prints one JSON line like the kit's scripts. Run from the deployed kit's client/ directory.
//
//   node crash.js --phase send --proto P --url U --prefix X --n 2000 --window 50 --kill-pid PID
//     the recipient logs in once (account / persistent session) and leaves; the sender sends
//     messages "<i> crash" to it with at most `window` sent but not server-acked, and the moment
//     the server has acked n of them, SIGKILLs PID (the server) from inside the ack callback.
//     Server acks: XMPP XEP-0198 <a h=N/> (the kit driver asks <r/> every 10 messages),
//     MQTT QoS1 PUBACK, imengine `ack` (sent after the commit).
//   node crash.js --phase recv --proto P --url U --prefix X --acked A
//     (after the server was restarted on the same data) the recipient logs in and counts which of
//     messages 0..A-1 it receives; stops when all A arrived or after --idle s without a new one.
const { xmppConnect, mqttConnect } = require('./drivers');
const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, arr) => {
  if (v.startsWith('--')) a.push([v.slice(2), arr[i + 1] && !arr[i + 1].startsWith('--') ? arr[i + 1] : 'true']);
  return a;
}, []));
const proto = args.proto || 'xmpp', url = args.url, phase = args.phase || 'send';
const prefix = args.prefix || 'k' + (Date.now() % 100000);
const N = +(args.n || 2000), W = +(args.window || 50), timeoutS = +(args.timeout || 90);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const connect = (u, extra) => (proto === 'mqtt'
  ? mqttConnect(u, { url, ...extra })
  : xmppConnect(u, { url, domain: args.domain || 'localhost', ...extra }));
const rcvName = prefix + 'r', sndName = prefix + 's';

async function send() {
  const r0 = await connect(rcvName); r0.close(); await sleep(500);
  const s = await connect(sndName, { sm: true });
  let acked = 0, sent = 0, killedAt = -1, done;
  const fin = new Promise((r) => (done = r));
  const t0 = process.hrtime.bigint();
  const pump = () => {
    // XMPP: the kit driver asks <r/> every 10 messages, enough to keep the window moving
    while (killedAt < 0 && sent < N + W && sent - acked < W) { s.send(rcvName, `${sent} crash`); sent++; }
  };
  s.onAck = (n) => {
    if (n > acked) acked = n;
    if (killedAt < 0 && acked >= N) {
      killedAt = acked;
      try { process.kill(+args['kill-pid'], 'SIGKILL'); } catch (e) { console.error('kill failed', e.message); }
      done('killed');
      return;
    }
    pump();
  };
  const timer = setTimeout(() => done('timeout'), timeoutS * 1000);
  pump();
  const why = await fin; clearTimeout(timer);
  const el = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ phase: 'send', proto, url, prefix, n: N, window: W, status: why === 'killed' ? 'ok' : 'TIMEOUT',
    sent, acked: killedAt >= 0 ? killedAt : acked, elapsed_s: +el.toFixed(3), acks_per_s: Math.round(acked / el) }));
  setTimeout(() => process.exit(why === 'killed' ? 0 : 2), 200);
}

async function recv() {
  const A = +(args.acked || 0), idleS = +(args.idle || 5);
  const got = new Set(); let total = 0, last = Date.now();
  const t0 = Date.now();
  const c = await connect(rcvName);
  last = Date.now();
  c.onMessage = (_f, body) => {
    total++; last = Date.now();
    const i = parseInt(body, 10);
    if (Number.isInteger(i) && / crash$/.test(body)) got.add(i);
  };
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    let survived = 0; for (const i of got) if (i < A) survived++;
    if (survived >= A || Date.now() - last > idleS * 1000 || Date.now() > deadline) break;
    await sleep(100);
  }
  let survived = 0; for (const i of got) if (i < A) survived++;
  console.log(JSON.stringify({ phase: 'recv', proto, url, prefix, acked: A, survived, lost: A - survived,
    received_distinct: got.size, received_total: total, wait_ms: Date.now() - t0 }));
  c.close();
  setTimeout(() => process.exit(0), 300);
}

(phase === 'send' ? send() : recv()).catch((e) => { console.error('FAILED', e.message); process.exit(1); });
