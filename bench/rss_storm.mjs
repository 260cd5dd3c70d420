// Connection storm and memory: waves of connections from distinct users
// log in and leave; prints the engine's RSS at start, at each wave's peak,
// and once the user actors have stopped (--actor-idle-s) and the memory
// went back to the OS. Bounded: WAVES x PER_WAVE connections, each wave
// and each wait with its own deadline.
// usage: node --experimental-websocket bench/rss_storm.mjs ENGINE_BIN [WAVES=6] [PER_WAVE=3000]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [bin, waves = '6', perWave = '3000'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), 'imstorm-'));
const engine = spawn(bin, ['--port=0', `--data=${dir}`, '--sync=none', '--actor-idle-s=5'],
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

const baseline = rssMiB();
console.log(`baseline RSS ${baseline} MiB`);
for (let w = 0; w < Number(waves); ++w) {
  const socks = [];
  for (let i = 0; i < Number(perWave); i += 200)   // 200 logins in flight at a time
    socks.push(...await Promise.all(Array.from({ length: Math.min(200, Number(perWave) - i) },
                                               (_, k) => login(`storm${w}x${i + k}`))));
  const peak = rssMiB();
  for (const s of socks) s.close();
  await until(async () => (await metric('imengine_connections_open')) === 0, 30000, 'connections closed');
  console.log(`wave ${w + 1}: ${socks.length} users, RSS at peak ${peak} MiB, after close ${rssMiB()} MiB`);
}
await until(async () => (await metric('imengine_user_actors')) === 0, 60000, 'user actors stopped');
const settled = rssMiB();
await new Promise(r => setTimeout(r, 6000));   // one release period of the engine (5 s)
console.log(`user actors stopped: RSS ${settled} MiB; after the next release ${rssMiB()} MiB (baseline ${baseline})`);
engine.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
