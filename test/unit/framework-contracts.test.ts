import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import multer from 'multer';
import request from 'supertest';
import { describe, expect, it } from 'vitest';

/**
 * The framework behaviours the node builds on beyond their documented API.
 * Each test names the code that relies on it; when one fails after an
 * upgrade, that code must change with it.
 */
describe('framework contracts the node relies on', () => {
  it('multer: streamHandler is called once per request with busboy, which emits the limit events and close (src/upload/multipart-engine.ts)', async () => {
    const parsers: Writable[] = [];
    const events: string[] = [];
    // streamHandler is in multer's README but not in @types/multer 2.3.
    const options: multer.Options & { streamHandler(req: express.Request, busboy: Writable): void } = {
      storage: multer.memoryStorage(),
      limits: { files: 1, fields: 0, parts: 1 },
      streamHandler: (req, busboy) => {
        parsers.push(busboy);
        for (const name of ['partsLimit', 'filesLimit', 'fieldsLimit', 'close']) busboy.once(name, () => events.push(name));
        req.pipe(busboy);
      },
    };
    const upload = multer(options).single('file');
    const app = express();
    app.post('/one', upload, (_req, res) => { res.send('ok'); });
    app.post('/two', upload, (_req, res) => { res.send('ok'); });
    app.use(((err, _req, res, _next) => { res.status(400).send((err as { code?: string }).code); }) as express.ErrorRequestHandler);

    await request(app).post('/one').attach('file', Buffer.from('a'), 'a.txt').expect(200, 'ok');
    expect(parsers).toHaveLength(1);
    expect(parsers[0]).toBeInstanceOf(Writable);
    expect(events).toEqual(['close']);

    events.length = 0;
    const two = await request(app).post('/two').attach('file', Buffer.from('a'), 'a.txt').attach('file', Buffer.from('b'), 'b.txt');
    expect(two.status).toBe(400);
    expect(two.text).toBe('LIMIT_FILE_COUNT');
    expect(parsers).toHaveLength(2);
    expect(events).toEqual(expect.arrayContaining(['filesLimit', 'partsLimit']));

    events.length = 0;
    const field = await request(app).post('/one').field('note', 'x').attach('file', Buffer.from('a'), 'a.txt');
    expect(field.status).toBe(400);
    expect(field.text).toBe('LIMIT_FIELD_COUNT');
    expect(parsers).toHaveLength(3);
    expect(events).toContain('fieldsLimit');
  });

  it('node:http: a response with Connection: close ends through socket.destroySoon, called once (src/http/error-handler.ts)', async () => {
    let calls = 0;
    const server = http.createServer((req, res) => {
      const socket = req.socket;
      const original = socket.destroySoon.bind(socket);
      socket.destroySoon = () => { calls++; original(); };
      res.setHeader('Connection', 'close');
      res.end('bye');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        let text = '';
        socket.on('data', (d: Buffer) => { text += d.toString(); });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(answer).toMatch(/\r\nConnection: close\r\n/i);
      expect(calls).toBe(1);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
  it('node:net: _handle.writeQueueSize counts the bytes libuv holds for a socket the kernel will not take, and falls as the peer reads (src/http/read/send-timeout.ts)', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    client.pause(); // a peer that stops reading
    const socket = await accepted;
    const queued = () => (socket as net.Socket & { _handle: { writeQueueSize: number } })._handle.writeQueueSize;
    try {
      expect(queued()).toBe(0);
      // More than the kernel's send and receive buffers on loopback take: the rest stays queued in libuv.
      const chunk = Buffer.alloc(1 << 20);
      for (let i = 0; i < 64 && queued() === 0; i++) socket.write(chunk);
      await new Promise((r) => setTimeout(r, 50));
      const stuck = queued();
      expect(stuck).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 100));
      expect(queued()).toBe(stuck); // nothing moves while the peer does not read
      client.resume();
      const deadline = Date.now() + 5000;
      while (queued() >= stuck && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(queued()).toBeLessThan(stuck);
    } finally {
      client.destroy();
      socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
