// The original system's design: a Socket.IO 4 server whose rooms are
// group:<id>, fanned out through the Redis adapter, and POST /api/emit,
// which broadcasts group:post_created to a group's room.
//
//   node server.js --port 3000 --redis redis://127.0.0.1:6379
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean).map((s) => s.trim().split(/\s+/)));
const port = Number(args.port || 3000);
const redisURL = args.redis || 'redis://127.0.0.1:6379';
// An emit body is a small JSON object; anything bigger is refused.
const maxBody = 64 << 10;

async function main() {
  const pub = createClient({ url: redisURL });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);

  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/api/emit') {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > maxBody) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid JSON"}');
        return;
      }
      if (typeof body.groupId !== 'string' || body.groupId === '') {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"groupId required"}');
        return;
      }
      io.to(`group:${body.groupId}`).emit('group:post_created', body.post ?? {});
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });

  const io = new Server(server, { adapter: createAdapter(pub, sub), serveClient: false });
  io.on('connection', (socket) => {
    socket.on('join', (groupId, ack) => {
      if (typeof groupId !== 'string' || groupId === '') return;
      socket.join(`group:${groupId}`);
      if (typeof ack === 'function') ack(true);
    });
  });

  server.listen(port, '127.0.0.1', () => console.log(`socket.io listening on 127.0.0.1:${port}`));
  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
