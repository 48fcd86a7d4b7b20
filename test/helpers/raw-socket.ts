import net from 'node:net';

/** A client connection to a spawned server: what it received so far (latin1) and when it closed. */
export interface RawSocket {
  readonly socket: net.Socket;
  received(): string;
  readonly closed: Promise<void>;
}

/** Connects to 127.0.0.1:`port` with a bare socket, for requests written byte by byte. */
export function rawSocket(port: number): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}
