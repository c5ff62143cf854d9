/**
 * Out-of-band changes now and then, as operators make them in the Proxmox UI: power changes,
 * renames, retags, config edits, migrations, creations and deletions. Used by the demo.
 */
import { createGuest, deleteGuest, updateGuest } from './control.js';
import { pick } from './random.js';
import type { SimCluster } from './state.js';

export interface ChurnEvent {
  kind: string;
  vmid: number;
  detail: string;
}

const TAG_CHOICES = ['prod', 'staging', 'dev', 'canary', 'backup'];

export function applyRandomChange(c: SimCluster): ChurnEvent | undefined {
  const ids = [...c.guests.keys()];
  if (ids.length === 0) return undefined;
  const vmid = pick(c.rng, ids);
  const g = c.guests.get(vmid)!;
  if (g.values.lock || g.values.template === '1') return undefined;
  const online = c.nodes.filter((n) => n.online);
  switch (pick(c.rng, ['power', 'power', 'rename', 'retag', 'memory', 'migrate', 'create', 'delete'] as const)) {
    case 'power': {
      const status = g.status === 'stopped' ? 'running' : 'stopped';
      updateGuest(c, vmid, { status });
      return { kind: 'power', vmid, detail: status };
    }
    case 'rename': {
      const name = `${c.name(g).replace(/-v\d+$/, '')}-v${Math.floor(c.rng() * 90) + 10}`;
      updateGuest(c, vmid, { name });
      return { kind: 'rename', vmid, detail: name };
    }
    case 'retag': {
      const tags = [pick(c.rng, TAG_CHOICES)];
      updateGuest(c, vmid, { tags });
      return { kind: 'retag', vmid, detail: tags.join(';') };
    }
    case 'memory': {
      const memory = String(pick(c.rng, [1024, 2048, 4096, 8192]));
      updateGuest(c, vmid, { config: { memory } });
      return { kind: 'config', vmid, detail: `memory=${memory}` };
    }
    case 'migrate': {
      const target = online.filter((n) => n.name !== g.node);
      if (!target.length) return undefined;
      const node = pick(c.rng, target).name;
      updateGuest(c, vmid, { node });
      return { kind: 'migrate', vmid, detail: node };
    }
    case 'create': {
      const created = createGuest(c, {
        type: c.rng() < 0.3 ? 'lxc' : 'qemu',
        node: pick(c.rng, online.length ? online : c.nodes).name,
        status: 'running',
      });
      return { kind: 'create', vmid: created.vmid, detail: c.name(created) };
    }
    case 'delete':
      if (g.status !== 'stopped') return undefined;
      deleteGuest(c, vmid);
      return { kind: 'delete', vmid, detail: c.name(g) };
  }
}

/** Applies a random change every `intervalMs`; returns a stop function. */
export function startChurn(
  c: SimCluster,
  intervalMs: number,
  onChange: (e: ChurnEvent) => void = () => {},
): () => void {
  const timer = setInterval(() => {
    const event = applyRandomChange(c);
    if (event) onChange(event);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
