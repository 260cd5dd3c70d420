// Connection storm and memory: waves of connections from distinct users
// log in and leave; prints the engine's RSS at start, at each wave's peak,
// and once the user actors have stopped (--actor-idle-s) and the memory
// went back to the OS. Bounded: WAVES x PER_WAVE connections, each wave
// and each wait with its own deadline. Meanwhile a bystander, on its own
// thread (a worker, so the storm's client work does not delay it), sends
// a durable dm every 20 ms and times each ack: what a storm costs the
// clients already there.
// usage: node --experimental-websocket bench/rss_storm.mjs ENGINE_BIN [WAVES=6] [PER_WAVE=3000] [SYNC=none]
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [bin, waves = '6', perWave = '3000', sync = 'none'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'imstorm-'));
const engine = spawn(bin, ['--port=0', `--data=${dir}`, `--sync=${sync}`, '--actor-idle-s=5'],
                     { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('engine did not start')), 10000);
  engine.stdout.on('data', d => {
    const m = /:(\d+)\/ws/.exec(String(d));
    if (m) { clearTimeout(t); resolve(Number(m[1])); }
  });
});
// VmRSS in MiB, with its anonymous part (the heap) apart from the file
// part (LMDB's map pages, shared with the page cache).
const rssMiB = () => {
  const status = readFileSync(`/proc/${engine.pid}/status`, 'utf8').split('\n');
  const kib = key => Number(status.find(l => l.startsWith(key)).split(/\s+/)[1]);
  const mib = k => Math.round(k / 1024 * 10) / 10;
  return `${mib(kib('VmRSS:'))} (anon ${mib(kib('RssAnon:'))}, file ${mib(kib('RssFile:'))})`;
};
const metric = async name => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find(l => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : NaN;
};
// The allocator's view, in MiB: live allocations / held free in its page
// heap / in its thread and central caches.
const heapMiB = async () => {
  const m = async n => Math.round((await metric(n)) / 1048576 * 10) / 10;
  return `heap live ${await m('imengine_heap_allocated_bytes')}, free ${await m('imengine_heap_free_bytes')},`
         + ` cached: thread ${await m('imengine_heap_cached_bytes{cache="thread"}')}`
         + ` central ${await m('imengine_heap_cached_bytes{cache="central"}')}`
         + ` transfer ${await m('imengine_heap_cached_bytes{cache="transfer"}')}`;
};
const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise(r => setTimeout(r, 200));
  }
};
const login = (user) => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const t = setTimeout(() => reject(new Error('login timeout')), 30000);
  ws.onopen = () => ws.send(JSON.stringify({ t: 'auth', req: 1, user, device: 'd', token: '' }));
  ws.onmessage = e => { if (JSON.parse(e.data).t === 'auth_ok') { clearTimeout(t); resolve(ws); } };
  ws.onerror = () => { clearTimeout(t); reject(new Error('socket error')); };
});

// The bystander: round trips of its sends, in ms, reported on request.
const bystander = new Worker(`
  const { parentPort, workerData: port } = require('node:worker_threads');
  const ws = new WebSocket('ws://127.0.0.1:' + port + '/ws');
  const rtts = []; let sentAt = 0, n = 0, stopped = false;
  const next = () => { if (stopped) return; sentAt = performance.now();
    ws.send(JSON.stringify({ t: 'send', req: ++n, conv: 'dm:bystander:peer', cmid: 'b' + n, body: 'x' })); };
  ws.onopen = () => ws.send(JSON.stringify({ t: 'auth', req: 0, user: 'bystander', device: 'd' }));
  ws.onclose = e => console.error('bystander closed', e.code, e.reason);
  ws.onmessage = e => { const f = JSON.parse(e.data);
    if (f.t === 'error') console.error('bystander error', JSON.stringify(f));
    if (f.t === 'auth_ok') return next();
    if (f.t === 'msg' && f.iseq) ws.send(JSON.stringify({ t: 'ack', iseq: f.iseq }));
    if (f.t === 'ack') { rtts.push(performance.now() - sentAt); setTimeout(next, 20); } };
  parentPort.on('message', m => { if (m === 'stop') { stopped = true; ws.close(); }
    parentPort.postMessage(rtts.splice(0)); });
`, { eval: true, workerData: port });
const rttReport = () => new Promise(resolve => {
  bystander.once('message', r => {
    r.sort((a, b) => a - b);
    const q = p => r.length ? r[Math.min(r.length - 1, Math.floor(p * r.length))].toFixed(1) : '-';
    resolve(`${r.length} acks, p50 ${q(0.5)} p99 ${q(0.99)} max ${r.length ? r[r.length - 1].toFixed(1) : '-'} ms`);
  });
  bystander.postMessage('report');
});
await new Promise(r => setTimeout(r, 2000));
console.log(`bystander before the storm: ${await rttReport()}`);

const baseline = rssMiB();
console.log(`baseline RSS ${baseline} MiB; ${await heapMiB()}`);
for (let w = 0; w < Number(waves); ++w) {
  const socks = [];
  for (let i = 0; i < Number(perWave); i += 200)   // 200 logins in flight at a time
    socks.push(...await Promise.all(Array.from({ length: Math.min(200, Number(perWave) - i) },
                                               (_, k) => login(`storm${w}x${i + k}`))));
  const peak = `${rssMiB()}; ${await heapMiB()}`;
  for (const s of socks) s.close();
  await until(async () => (await metric('imengine_connections_open')) <= 1, 30000, 'connections closed');
  console.log(`wave ${w + 1}: ${socks.length} users, RSS at peak ${peak} MiB, after close ${rssMiB()} MiB;`
              + ` bystander ${await rttReport()}`);
}
// All but the bystander's and its peer's (which gets a copy every 20 ms).
await until(async () => (await metric('imengine_user_actors')) <= 2, 60000, 'user actors stopped');
const settled = rssMiB();
await new Promise(r => setTimeout(r, 6000));   // one release period of the engine (5 s)
console.log(`user actors stopped: RSS ${settled} MiB; after the next release ${rssMiB()} MiB,`
            + ` ${await heapMiB()} (baseline ${baseline})`);
bystander.postMessage('stop');
await new Promise(r => bystander.once('message', r));
await bystander.terminate();
engine.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
