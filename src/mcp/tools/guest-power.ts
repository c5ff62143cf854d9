import { z } from 'zod';
import { CATALOGUE, POWER_KINDS, type ActionKindName, type PowerKind } from '../../actions/catalogue.js';
import { count, flag, text, vmid } from '../schemas.js';
import { defineActionTool } from '../tool.js';
import { ActionOutput, askForAction, commonInput, definedOnly, kindsDescribed } from './action-shared.js';

const isPower = (k: ActionKindName): k is PowerKind => (POWER_KINDS as readonly string[]).includes(k);

/** Each kind's own parameters. */
const KIND_PARAMS = {
  timeout: count(1, 3600, 'seconds').optional().describe('shutdown: seconds to wait for the guest to shut down'),
  forceStop: flag().optional().describe('shutdown: stop it hard if it has not shut down by the timeout'),
  todisk: flag().optional().describe('suspend, qemu only: save RAM to disk (hibernate)'),
};
const PARAM_KIND: Record<keyof typeof KIND_PARAMS, PowerKind> = {
  timeout: 'shutdown',
  forceStop: 'shutdown',
  todisk: 'suspend',
};

function inputFor(kinds: readonly PowerKind[]) {
  return z
    .object({
      vmid: vmid(),
      cluster: text(63).optional().describe('needed only when the vmid exists in several clusters'),
      action: z.enum(kinds as [PowerKind, ...PowerKind[]], {
        error: (i) => `expected one of ${kinds.join(', ')}, got ${JSON.stringify(i.input) ?? 'nothing'}`,
      }),
      ...KIND_PARAMS,
      ...commonInput,
    })
    .strict();
}

/** Listed: a parameter only when its kind is offered. */
function listedFor(kinds: readonly PowerKind[]) {
  const hidden = Object.entries(PARAM_KIND).filter(([, kind]) => !kinds.includes(kind));
  // Only the listing's JSON Schema is built from it; calls are validated against the whole input.
  const mask = Object.fromEntries(hidden.map(([key]) => [key, true])) as Partial<
    Record<keyof typeof KIND_PARAMS, true>
  >;
  return inputFor(kinds).omit(mask);
}

const powerKinds = (kinds: readonly ActionKindName[]): PowerKind[] => kinds.filter(isPower);

export const guestPowerTool = defineActionTool({
  name: 'guest_power',
  title: 'Power a guest on or off',
  kinds: POWER_KINDS,
  description: (kinds) =>
    `Asks the daemon to change a VM's or container's power state through its action queue and returns the action id at once (follow it with get_action, or pass waitSeconds). ${kindsDescribed(powerKinds(kinds), (k) => k)}. A destructive action first answers a plan and a confirmation token (or asks the user, when the client can): call again with the same arguments and "confirmation".`,
  listedInput: (kinds) => listedFor(powerKinds(kinds)),
  input: inputFor([...POWER_KINDS]),
  output: ActionOutput,
  annotations: (kinds) => ({
    readOnlyHint: false,
    destructiveHint: powerKinds(kinds).some((k) => CATALOGUE[k].destructive),
    idempotentHint: false,
    openWorldHint: true,
  }),
  handler: (args, ctx) =>
    askForAction(ctx, {
      tool: 'guest_power',
      request: {
        kind: args.action,
        vmid: args.vmid,
        cluster: args.cluster,
        params: definedOnly({ timeout: args.timeout, forceStop: args.forceStop, todisk: args.todisk }),
        idempotencyKey: args.idempotencyKey,
      },
      waitSeconds: args.waitSeconds,
      confirmation: args.confirmation,
    }),
});
