/**
 * A webhook receiver on loopback that counts by webhook-id, verifies every request with the
 * `standardwebhooks` package, and can be taken down (nothing listening: connection refused) and
 * brought back on the same port, or made to answer slowly, with any status, or not at all.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Arrival {
  id: string;
  seq: number;
  type: string;
  /** When the request's body had arrived (ms). */
  at: number;
  /** What it was answered; undefined while held, or when the connection died first. */
  status?: number;
  answeredAt?: number;
  /** The signature checked out with the subscription's secret (standardwebhooks). */
  verified: boolean;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** Hold the request this long before answering. */
  delayMs?: number;
}

export type Behaviour = (arrival: Arrival) => Answer;

export interface CountingReceiver {
  url: string;
  port: number;
  arrivals: Arrival[];
  /** Requests that reached it, whatever it answered. */
  readonly connections: number;
  behave(behaviour: Behaviour): void;
  /** Stops listening (new connections are refused) and drops the open ones. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Each webhook-id answered 2xx, with how many times. */
  acceptedCounts(): Map<string, number>;
  close(): Promise<void>;
}

export const ok: Behaviour = () => ({ status: 204 });

export async function startCountingReceiver(secret: string, behaviour: Behaviour = ok): Promise<CountingReceiver> {
  const verifier = new Webhook(secret);
  const arrivals: Arrival[] = [];
  let current = behaviour;
  let connections = 0;
  let port = 0;
  let server: Server | undefined;

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const arrival = readArrival(verifier, req, body);
      arrivals.push(arrival);
      const answer = current(arrival);
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(answer.status, answer.headers).end();
        arrival.status = answer.status;
        arrival.answeredAt = Date.now();
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs).unref();
      else send();
    });
  };

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = createServer(onRequest);
      s.on('connection', () => connections++);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as AddressInfo).port;
        server = s;
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      const s = server;
      server = undefined;
      if (!s) return resolve();
      s.closeAllConnections();
      s.close(() => resolve());
    });

  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${port}/hook`;
    },
    get port() {
      return port;
    },
    arrivals,
    get connections() {
      return connections;
    },
    behave: (b) => (current = b),
    down: stop,
    up: listen,
    acceptedCounts() {
      const counts = new Map<string, number>();
      for (const a of arrivals)
        if (a.status !== undefined && a.status >= 200 && a.status < 300) counts.set(a.id, (counts.get(a.id) ?? 0) + 1);
      return counts;
    },
    close: stop,
  };
}

function readArrival(verifier: Webhook, req: IncomingMessage, body: string): Arrival {
  const headers = {
    'webhook-id': String(req.headers['webhook-id']),
    'webhook-timestamp': String(req.headers['webhook-timestamp']),
    'webhook-signature': String(req.headers['webhook-signature']),
  };
  let verified = true;
  try {
    verifier.verify(body, headers);
  } catch {
    verified = false;
  }
  const envelope = JSON.parse(body) as { seq: number; type: string };
  return { id: headers['webhook-id'], seq: envelope.seq, type: envelope.type, at: Date.now(), verified };
}

/** How often each value occurs. */
export function tally(values: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}
