// Prints the comparison table from the per-size JSON reports run.sh wrote:
// report.js DIR SIZE... (DIR/socketio-N.json, DIR/groupcast-N.json).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const [dir, ...sizes] = process.argv.slice(2);
const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
const ms = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1)) + ' ms';
console.log('| subscribers | Socket.IO p50 | Socket.IO p99 | Groupcast p50 | Groupcast p99 | p50 ratio | p99 ratio | delivered (S.IO / Groupcast) | missing |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const n of sizes) {
  const s = read(`socketio-${n}.json`);
  const g = read(`groupcast-${n}.json`)[0];
  const sl = s.latencyMs, gl = g.latencyMs;
  console.log(`| ${Number(n).toLocaleString('en')} | ${ms(sl.p50)} | ${ms(sl.p99)} | ${ms(gl.p50)} | ${ms(gl.p99)} | ${(gl.p50 / sl.p50).toFixed(1)}× | ${(gl.p99 / sl.p99).toFixed(1)}× | ${s.received} / ${g.received} | ${s.missing} / ${g.missing} |`);
}
