// Connects N socket.io clients that join room group:<id>, then POSTs
// /api/emit P times at R per second and measures emit -> receipt on every
// client, the way Groupcast's loadgen measures POST -> receipt. Prints one
// JSON report.
//
//   node bench.js --url http://127.0.0.1:3000 --clients 1000 --posts 20 --rate 2
'use strict';
const http = require('node:http');
const { io } = require('socket.io-client');

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean).map((s) => s.trim().split(/\s+/)));
const url = args.url || 'http://127.0.0.1:3000';
const clients = Number(args.clients || 100);
const posts = Number(args.posts || 20);
const rate = Number(args.rate || 2);
// Bounds: every wait ends. Connecting 5,000 clients takes a few seconds;
// deliveries of the last post are waited for as long as loadgen waits.
const connectTimeoutMs = Number(args['connect-timeout-ms'] || 120000);
const waitMs = Number(args['wait-ms'] || 15000);
const dialConcurrency = 100; // as loadgen's default --dial-concurrency
const groupId = 'g-compare';
const u = new URL(url);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
  console.error('bench.js only targets loopback addresses');
  process.exit(1);
}

const sockets = [];
const sentAt = new Map(); // post id -> hrtime ms
const latencies = [];
let received = 0;
let duplicated = 0;
const seen = new Set();

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function connectOne(i) {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: connectTimeoutMs });
    s.on('group:post_created', (p) => {
      const t = nowMs();
      const key = `${i}/${p.id}`;
      if (seen.has(key)) {
        duplicated++;
        return;
      }
      seen.add(key);
      received++;
      const start = sentAt.get(p.id);
      if (start !== undefined) latencies.push(t - start);
    });
    s.once('connect_error', reject);
    s.once('connect', () => s.emit('join', groupId, () => resolve(s)));
  });
}

function emit(id) {
  const body = JSON.stringify({ groupId, post: { id, type: 'post_created', text: 'x'.repeat(200) } });
  return new Promise((resolve, reject) => {
    sentAt.set(id, nowMs());
    const req = http.request(url + '/api/emit', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`emit: status ${res.statusCode}`))));
    });
    req.setTimeout(10000, () => req.destroy(new Error('emit: timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function pct(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const deadline = setTimeout(() => {
    console.error('connect: timed out');
    process.exit(1);
  }, connectTimeoutMs);
  const t0 = nowMs();
  for (let i = 0; i < clients; i += dialConcurrency) {
    const batch = [];
    for (let j = i; j < Math.min(clients, i + dialConcurrency); j++) batch.push(connectOne(j));
    sockets.push(...(await Promise.all(batch)));
  }
  clearTimeout(deadline);
  const connectAllMs = nowMs() - t0;

  let emitErrors = 0;
  for (let k = 0; k < posts; k++) {
    const next = t0 + connectAllMs + (k * 1000) / rate;
    const wait = next - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    emit(`p${k}`).catch(() => emitErrors++);
  }
  const expected = clients * posts;
  const waitUntil = nowMs() + waitMs;
  while (received < expected && nowMs() < waitUntil) await new Promise((r) => setTimeout(r, 50));

  latencies.sort((a, b) => a - b);
  const r3 = (x) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({
    clients, posts, expected, received, duplicated, missing: expected - received, emitErrors,
    connectAllMs: r3(connectAllMs),
    latencyMs: { min: r3(latencies[0] ?? 0), p50: r3(pct(latencies, 50)), p90: r3(pct(latencies, 90)), p99: r3(pct(latencies, 99)), max: r3(latencies[latencies.length - 1] ?? 0), n: latencies.length },
  }));
  for (const s of sockets) s.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
