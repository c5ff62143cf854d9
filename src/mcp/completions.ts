/**
 * completion/complete: the values a client offers in its pickers for resource template variables
 * and prompt arguments, read from the store, ranked, at most 100, with the count of all matches.
 *
 * This is our own handler, not the SDK's `complete` callbacks: the SDK takes `total` to be the
 * length of the list a callback returns, so an honest total would mean reading every match (all
 * 10,000 vmids for an empty field) to send 100; the queries here read 100 and count the rest.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CompleteRequestSchema, type CompleteResult } from '@modelcontextprotocol/sdk/types.js';
import {
  COMPLETION_LIMIT,
  completeClusters,
  completeGuests,
  completeNodes,
  type Completion,
} from '../store/queries.js';
import { invalidParams } from './request-error.js';
import type { ToolContext } from './tool.js';

/** Values for what was typed, given the arguments already chosen (`context.arguments`: the cluster first). */
export type Completer = (typed: string, chosen: Readonly<Record<string, string>>, context: ToolContext) => Completion;

export interface CompletionSources {
  /** By URI template, then variable. */
  resources: Record<string, Record<string, Completer>>;
  /** By prompt name, then argument. */
  prompts: Record<string, Record<string, Completer>>;
}

const NOTHING: Completion = { values: [], total: 0 };

/** An empty choice means none: a client may send `cluster: ""` before one is picked. */
const chosenCluster = (chosen: Readonly<Record<string, string>>): string | undefined => chosen.cluster || undefined;

export const clusterNames: Completer = (typed, _chosen, { store }) =>
  store ? completeClusters(store, typed) : NOTHING;

export const nodeNames: Completer = (typed, chosen, { store }) =>
  store ? completeNodes(store, typed, chosenCluster(chosen)) : NOTHING;

/** Digits complete vmids, anything else guest names (a guest resource is read by either). */
export const guestRefs: Completer = (typed, chosen, { store }) =>
  store ? completeGuests(store, typed, chosenCluster(chosen)) : NOTHING;

/** A few usual values (sizes, durations) that start with what was typed, in the order given. */
export const usualValues =
  (values: readonly string[]): Completer =>
  (typed) => {
    const matches = values.filter((v) => v.startsWith(typed));
    return { values: matches, total: matches.length };
  };

export function registerCompletions(server: McpServer, sources: CompletionSources, context: ToolContext): void {
  server.server.registerCapabilities({ completions: {} });
  server.server.setRequestHandler(CompleteRequestSchema, (request): CompleteResult => {
    const { ref, argument } = request.params;
    const complete = completersFor(sources, ref)[argument.name];
    const found = complete ? complete(argument.value, request.params.context?.arguments ?? {}, context) : NOTHING;
    return answer(found);
  });
}

/** The completers of the template or prompt referred to; an unknown one is the caller's error (-32602), as the spec says. */
function completersFor(
  sources: CompletionSources,
  ref: { type: 'ref/resource'; uri: string } | { type: 'ref/prompt'; name: string },
): Record<string, Completer> {
  if (ref.type === 'ref/resource')
    return (
      sources.resources[ref.uri] ??
      invalidParams(`no resource template ${ref.uri}; the templates are ${Object.keys(sources.resources).join(', ')}`)
    );
  return (
    sources.prompts[ref.name] ??
    invalidParams(`no prompt ${ref.name}; the prompts are ${Object.keys(sources.prompts).join(', ')}`)
  );
}

function answer({ values, total }: Completion): CompleteResult {
  const sent = values.slice(0, COMPLETION_LIMIT);
  return { completion: { values: sent, total, hasMore: total > sent.length } };
}
