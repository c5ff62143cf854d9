/**
 * Webhook subscriptions in trouble, as MCP answers report them: disabled, or failing since a time,
 * with their dead letters. Never the URL (its path or query often carries the receiver's token),
 * a secret, or a receiver's answer: the subscription's id, description and host.
 */
import type { Store } from './db.js';
import { failedCounts, troubledSubscriptions } from './webhooks.js';

export interface WebhookProblem {
  subscription: string;
  description: string | null;
  host: string;
  enabled: boolean;
  disabledReason: string | null;
  failingSince: string | null;
  lastSuccessAt: string | null;
  /** Deliveries that ran out of attempts (replayable with `webhooks replay`). */
  deadLetters: number;
}

const iso = (ms: number | null): string | null => (ms == null ? null : new Date(ms).toISOString());

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '?';
  }
}

export function webhookProblems(store: Store): WebhookProblem[] {
  const dead = failedCounts(store);
  return troubledSubscriptions(store).map((s) => ({
    subscription: s.id,
    description: s.description,
    host: hostOf(s.url),
    enabled: s.enabled,
    disabledReason: s.disabledReason,
    failingSince: iso(s.failingSince),
    lastSuccessAt: iso(s.lastSuccessAt),
    deadLetters: dead.get(s.id) ?? 0,
  }));
}

/** One line per subscription in trouble, for answers' text. */
export function webhookProblemLine(p: WebhookProblem, show: (text: string | null, max?: number) => string): string {
  const what = p.enabled
    ? `failing since ${p.failingSince}`
    : `DISABLED (${show(p.disabledReason, 80)}); \`proxmox-inventory webhooks enable ${p.subscription}\` after fixing the receiver`;
  return `webhook ${p.subscription}${p.description ? ` ${show(p.description, 40)}` : ''} → ${show(p.host, 80)}: ${what}${p.deadLetters ? `; ${p.deadLetters} failed deliver${p.deadLetters === 1 ? 'y' : 'ies'} (webhooks replay)` : ''}`;
}
