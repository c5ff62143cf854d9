import { z } from 'zod';
import { CATALOGUE, SNAPSHOT_KINDS, type ActionKindName, type SnapshotKind } from '../../actions/catalogue.js';
import { flag, text, vmid } from '../schemas.js';
import { defineActionTool } from '../tool.js';
import { ActionOutput, askForAction, commonInput, definedOnly, kindsDescribed } from './action-shared.js';

type SnapshotAction = 'create' | 'rollback' | 'delete';
const actionOf = (k: SnapshotKind): SnapshotAction => k.replace('snapshot_', '') as SnapshotAction;
const isSnapshot = (k: ActionKindName): k is SnapshotKind => (SNAPSHOT_KINDS as readonly string[]).includes(k);
const snapshotKinds = (kinds: readonly ActionKindName[]): SnapshotKind[] => kinds.filter(isSnapshot);

/** Each action's own parameters. */
const KIND_PARAMS = {
  description: z.string().max(1000).optional().describe('create: the snapshot description'),
  vmstate: flag().optional().describe('create, qemu only: save the running RAM too'),
  start: flag().optional().describe('rollback: start the guest after it'),
  force: flag().optional().describe('delete: remove it from the config even if the disk part fails'),
};
const PARAM_ACTION: Record<keyof typeof KIND_PARAMS, SnapshotAction> = {
  description: 'create',
  vmstate: 'create',
  start: 'rollback',
  force: 'delete',
};

function inputFor(kinds: readonly SnapshotKind[]) {
  const actions = kinds.map(actionOf);
  return z
    .object({
      vmid: vmid(),
      cluster: text(63).optional().describe('needed only when the vmid exists in several clusters'),
      action: z.enum(actions as [SnapshotAction, ...SnapshotAction[]], {
        error: (i) => `expected one of ${actions.join(', ')}, got ${JSON.stringify(i.input) ?? 'nothing'}`,
      }),
      name: text(40).describe('the snapshot name: a letter, then letters, digits, - or _ (Proxmox rule)'),
      ...KIND_PARAMS,
      ...commonInput,
    })
    .strict();
}

/** Listed: a parameter only when its action is offered. */
function listedFor(kinds: readonly SnapshotKind[]) {
  const actions = kinds.map(actionOf);
  const hidden = Object.entries(PARAM_ACTION).filter(([, action]) => !actions.includes(action));
  // Only the listing's JSON Schema is built from it; calls are validated against the whole input.
  const mask = Object.fromEntries(hidden.map(([key]) => [key, true])) as Partial<
    Record<keyof typeof KIND_PARAMS, true>
  >;
  return inputFor(kinds).omit(mask);
}

export const guestSnapshotTool = defineActionTool({
  name: 'guest_snapshot',
  title: 'Snapshot a guest',
  kinds: SNAPSHOT_KINDS,
  description: (kinds) =>
    `Asks the daemon to create, roll back or delete a guest snapshot through its action queue and returns the action id at once (follow it with get_action, or pass waitSeconds); get_guest lists the snapshots. ${kindsDescribed(snapshotKinds(kinds), (k) => actionOf(k as SnapshotKind))}. A destructive action first answers a plan and a confirmation token (or asks the user, when the client can): call again with the same arguments and "confirmation".`,
  listedInput: (kinds) => listedFor(snapshotKinds(kinds)),
  input: inputFor([...SNAPSHOT_KINDS]),
  output: ActionOutput,
  annotations: (kinds) => ({
    readOnlyHint: false,
    destructiveHint: snapshotKinds(kinds).some((k) => CATALOGUE[k].destructive),
    idempotentHint: false,
    openWorldHint: true,
  }),
  handler: (args, ctx) =>
    askForAction(ctx, {
      tool: 'guest_snapshot',
      request: {
        kind: `snapshot_${args.action}`,
        vmid: args.vmid,
        cluster: args.cluster,
        params: definedOnly({
          name: args.name,
          description: args.description,
          vmstate: args.vmstate,
          start: args.start,
          force: args.force,
        }),
        idempotencyKey: args.idempotencyKey,
      },
      waitSeconds: args.waitSeconds,
      confirmation: args.confirmation,
    }),
});
