#include "net/session.hpp"

namespace imengine::net {

// A self-contained browser client for trying the engine by hand: log in,
// send to a conversation, see pushes (acked at once) and sync the inbox.
const char* const demo_page = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imengine demo</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:52em}
input{margin:0 .5em .5em 0}#log{border:1px solid #ccc;height:24em;overflow:auto;padding:.5em;white-space:pre-wrap;font-family:monospace}
.me{color:#06c}.err{color:#c00}.sys{color:#888}
</style></head><body>
<h1>imengine</h1>
<div>user <input id="user" value="alice" size="10"> device <input id="device" value="web" size="8">
<button id="login">connect</button> <span id="state" class="sys">offline</span></div>
<div>conversation <input id="conv" value="dm:alice:bob" size="24"></div>
<div><input id="text" size="50" placeholder="message"> <button id="send">send</button> <button id="sync">sync</button></div>
<div id="log"></div>
<script>
let ws = null, req = 0, iseq = 0, cmid = 0;
const $ = id => document.getElementById(id);
function log(text, cls) { const d = document.createElement('div'); d.textContent = text; if (cls) d.className = cls; $('log').appendChild(d); $('log').scrollTop = 1e9; }
function send(frame) { frame.req = ++req; ws.send(JSON.stringify(frame)); }
$('login').onclick = () => {
  if (ws) ws.close();
  ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
  ws.onopen = () => send({t: 'auth', user: $('user').value, device: $('device').value, token: ''});
  ws.onclose = e => { $('state').textContent = 'closed (' + e.code + ')'; };
  ws.onmessage = e => {
    const f = JSON.parse(e.data);
    if (f.t === 'auth_ok') { $('state').textContent = 'online as ' + f.user + ' on ' + f.node; iseq = f.iseq; send({t: 'sync', after: 0, limit: 100}); }
    else if (f.t === 'msg') { log('[' + f.conv + ' #' + f.seq + '] ' + f.from + ': ' + f.body, f.from === $('user').value ? 'me' : ''); if (f.iseq) { iseq = Math.max(iseq, f.iseq); ws.send(JSON.stringify({t: 'ack', iseq: f.iseq})); } }
    else if (f.t === 'sync_result') { f.msgs.forEach(m => log('[' + m.conv + ' #' + m.seq + '] ' + m.from + ': ' + m.body, 'sys')); if (f.msgs.length) { const last = f.msgs[f.msgs.length - 1].iseq; if (f.more) send({t: 'sync', after: last, limit: 100}); else ws.send(JSON.stringify({t: 'ack', iseq: last})); } }
    else if (f.t === 'ack') log('sent #' + f.seq + (f.dup ? ' (dup)' : ''), 'sys');
    else if (f.t === 'error') log('error ' + f.code + ': ' + f.msg, 'err');
  };
};
$('send').onclick = () => { if (!ws) return; send({t: 'send', conv: $('conv').value, cmid: 'web-' + Date.now() + '-' + (++cmid), type: 'text', body: $('text').value}); $('text').value = ''; };
$('text').onkeydown = e => { if (e.key === 'Enter') $('send').onclick(); };
$('sync').onclick = () => ws && send({t: 'sync', after: 0, limit: 100});
</script></body></html>
)HTML";

} // namespace imengine::net
