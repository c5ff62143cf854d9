/**
 * Webhooks end to end through `serve` as its own process: out-of-band changes on two simulated
 * clusters (the simulator's /_sim/guests control API) and an action from the shell become events,
 * and each event reaches each matching subscription exactly once (counted by webhook-id at receivers
 * verifying with `standardwebhooks`), with the event glob, cluster and tag filters honoured and
 * each subscription's deliveries made in event order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Simulator } from '../../src/sim/server.js';
import { generateWebhookSecret } from '../../src/webhooks/secret.js';
import { startCountingReceiver, tally, type CountingReceiver } from './counting-receiver.js';
import { startServeHarness, until, type ServeHarness, type ServeProcess, type Subscribed } from './serve-harness.js';

const CLUSTERS = [
  { name: 'east', nodes: 3, guests: 40, seed: 11 },
  { name: 'west', nodes: 2, guests: 20, seed: 12 },
];

let h: ServeHarness;
let serve: ServeProcess;
const prod: Record<string, Set<number>> = { east: new Set(), west: new Set() };

/** Guests an out-of-band change or an action may touch: no template, no lock, no HA. */
const usable = (sim: Simulator) =>
  [...sim.cluster.guests.values()].filter((g) => g.values.template !== '1' && !g.values.lock && !g.ha);

async function control(sim: Simulator, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${sim.url}/_sim${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} /_sim${path}: ${res.status} ${await res.text()}`);
}

beforeAll(async () => {
  h = await startServeHarness(CLUSTERS, { ACTIONS: 'power' });
  // Tags fixed before the first sync and never changed after, so "tagged prod" has one answer.
  for (const [name, sim] of Object.entries(h.sims)) {
    const candidates = usable(sim);
    candidates.slice(0, 7).forEach((g) => prod[name]!.add(g.vmid));
    for (const g of sim.cluster.guests.values())
      sim.updateGuest(g.vmid, { tags: prod[name]!.has(g.vmid) ? ['prod'] : ['dev'], silent: true });
    // The seventh tagged guest is deleted (it must be stopped), the sixth gets the action stop.
    sim.updateGuest(candidates[5]!.vmid, { status: 'running', silent: true });
    sim.updateGuest(candidates[6]!.vmid, { status: 'stopped', silent: true });
  }
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('webhooks through serve', () => {
  const receivers: Record<string, CountingReceiver> = {};
  const subs: Record<string, Subscribed> = {};

  it('each event once per matching subscription, filters honoured, deliveries in event order, action events too', async () => {
    const specs = {
      guests: { events: ['guest.*'] },
      eastStatus: { events: ['guest.status_changed'], cluster: 'east' },
      prodTagged: { events: ['*'], tag: 'prod' },
      actions: { events: ['action.*'] },
    } as const;
    for (const [key, spec] of Object.entries(specs)) {
      const secret = generateWebhookSecret();
      receivers[key] = await startCountingReceiver(secret);
      subs[key] = h.subscribe(receivers[key].url, [...spec.events], {
        cluster: 'cluster' in spec ? spec.cluster : undefined,
        tag: 'tag' in spec ? spec.tag : undefined,
        secret,
      });
    }

    serve = await h.serve();
    await serve.waitForLog('webhook delivery started');
    await until('both clusters imported', () => h.events(0, 'cluster.imported').length === 2);

    // Out-of-band changes as the Proxmox UI makes them, through the simulator's control API.
    const east = h.sims.east!;
    const west = h.sims.west!;
    for (const [sim, cluster] of [
      [east, 'east'],
      [west, 'west'],
    ] as const) {
      const guests = usable(sim);
      const tagged = guests.filter((g) => prod[cluster]!.has(g.vmid));
      const plain = guests.filter((g) => !prod[cluster]!.has(g.vmid));
      for (const g of [...tagged.slice(0, 3), ...plain.slice(0, 4)])
        await control(sim, 'PATCH', `/guests/${g.vmid}`, { status: g.status === 'running' ? 'stopped' : 'running' });
      for (const g of [tagged[3]!, plain[5]!])
        await control(sim, 'PATCH', `/guests/${g.vmid}`, { config: { memory: '3072' } });
      const otherNode = sim.cluster.nodes.find((n) => n.name !== tagged[4]!.node)!.name;
      await control(sim, 'PATCH', `/guests/${tagged[4]!.vmid}`, { node: otherNode });
      await sleep(1_500); // a cycle in between: the next edits are events of their own
      await control(sim, 'PATCH', `/guests/${plain[6]!.vmid}`, { status: 'stopped' });
    }
    // A tagged guest deleted (a subscriber filtering on the tag hears of it) and a tagged one created.
    const tagged = usable(east).filter((g) => prod.east!.has(g.vmid));
    const [target, doomed] = [tagged[5]!, tagged[6]!];
    await control(east, 'DELETE', `/guests/${doomed.vmid}`);
    await control(west, 'POST', '/guests', {
      type: 'qemu',
      node: west.cluster.nodes[0]!.name,
      vmid: 9001,
      tags: ['prod'],
    });
    prod.west!.add(9001);

    // An action from the shell on a tagged running guest: action.queued/started/succeeded.
    await sleep(1_500); // the sync has seen the latest state, so the action is checked against it
    const queued = await h.cli(['action', 'stop', String(target.vmid), '--cluster', 'east', '--yes']);
    expect(queued.code, queued.stderr).toBe(0);
    await until('the action to finish', () => h.events(0, 'action.succeeded').length === 1, 30_000);

    // Settled: every committed event relayed, nothing pending, no new event for two seconds.
    await settle();

    const events = h.events(0);
    const seqOf = new Map(events.map((e) => [e.id, e.seq]));
    const guestOf = guestResolver();
    const expected: Record<string, string[]> = {
      guests: events.filter((e) => e.type.startsWith('guest.')).map((e) => e.id),
      eastStatus: events.filter((e) => e.type === 'guest.status_changed' && e.cluster === 'east').map((e) => e.id),
      prodTagged: events
        .filter((e) => {
          const g = guestOf(e);
          return g !== undefined && prod[g.cluster]!.has(g.vmid);
        })
        .map((e) => e.id),
      actions: events.filter((e) => e.type.startsWith('action.')).map((e) => e.id),
    };
    // The churn reached every filter: otherwise "nothing else arrived" would prove little.
    expect(expected.eastStatus!.length).toBeGreaterThanOrEqual(4);
    expect(expected.prodTagged!.length).toBeGreaterThan(prod.east!.size + prod.west!.size); // imports and more
    expect(
      events.filter((e) => e.type === 'guest.deleted' && e.id && expected.prodTagged!.includes(e.id)),
    ).toHaveLength(1);
    expect(events.filter((e) => e.type.startsWith('action.')).map((e) => e.type)).toEqual([
      'action.queued',
      'action.started',
      'action.succeeded',
    ]);

    for (const [key, receiver] of Object.entries(receivers)) {
      const counts = tally(receiver.arrivals.map((a) => a.id));
      expect([...counts.keys()].sort(), key).toEqual([...expected[key]!].sort());
      expect(
        [...counts.values()].every((n) => n === 1),
        `${key}: an id twice`,
      ).toBe(true);
      expect(
        receiver.arrivals.every((a) => a.verified && a.status === 204),
        key,
      ).toBe(true);
      expect(
        receiver.arrivals.every((a) => a.seq === seqOf.get(a.id)),
        `${key}: envelope seq`,
      ).toBe(true);
      // The relay wrote each subscription's deliveries in event order (seq increasing), all succeeded.
      const rows = h.deliveries(subs[key]!.id);
      const seqs = rows.map((r) => r.eventSeq);
      expect(seqs, key).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size, key).toBe(seqs.length);
      expect(
        rows.every((r) => r.state === 'succeeded' && r.attempts === 1),
        key,
      ).toBe(true);
    }
  }, 120_000);

  async function settle(): Promise<void> {
    let last = -1;
    let quietSince = Date.now();
    await until(
      'deliveries to settle',
      () => {
        const newest =
          (h.store.sqlite.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck().get() as number) ?? 0;
        const cursor = h.store.sqlite.prepare('SELECT coalesce(max(last_seq), 0) FROM webhook_relay').pluck().get();
        const pending = h.store.sqlite
          .prepare("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")
          .pluck()
          .get() as number;
        if (newest !== last || cursor !== newest || pending > 0) {
          last = newest;
          quietSince = Date.now();
          return false;
        }
        return Date.now() - quietSince > 2_000;
      },
      60_000,
    );
  }

  /** The guest an event is about: a guest event's subject, an action's vmid. */
  function guestResolver(): (e: { id: string }) => { cluster: string; vmid: number } | undefined {
    const rows = h.store.sqlite
      .prepare('SELECT id, cluster, subject_kind, subject_id, data FROM events')
      .all() as Array<{
      id: string;
      cluster: string | null;
      subject_kind: string;
      subject_id: string;
      data: string;
    }>;
    const byId = new Map(rows.map((r) => [r.id, r]));
    return (e) => {
      const r = byId.get(e.id);
      if (!r?.cluster) return undefined;
      if (r.subject_kind === 'guest') return { cluster: r.cluster, vmid: Number(r.subject_id.split('/')[1]) };
      if (r.subject_kind === 'action')
        return { cluster: r.cluster, vmid: (JSON.parse(r.data) as { vmid: number }).vmid };
      return undefined;
    };
  }
});
