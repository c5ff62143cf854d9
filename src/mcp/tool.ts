/**
 * How a tool is defined: one file per tool exports a `defineTool(...)` object; `createMcpServer`
 * registers them all. Handlers read the store only (the server runs each in one consistent read,
 * with the freshness it reports) and return structured data plus a compact text rendering; a miss
 * the model can fix is a `ToolMiss` (an `isError` result with a hint).
 *
 * Action tools (`defineActionTool`) ask for changes in Proxmox through the action queue: their
 * handlers are async (they write the outbox, may ask the user, may wait for the outcome), and what
 * they offer depends on who calls (the kinds in the caller's scope).
 */
import type { ElicitRequestFormParams, ElicitResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { ActionKindName } from '../actions/catalogue.js';
import type { SubmitDeps } from '../actions/submit.js';
import type { Store } from '../store/db.js';

/** Who is calling: the audit trail of an action, and the kinds it may ask for. */
export interface Caller {
  transport: 'mcp-stdio' | 'mcp-http';
  /** The client's declared name/version (from the initialize request), filled by the server. */
  client: string | null;
  /** HTTP token label, or the local user name for stdio. */
  principal: string;
  /** Kinds this caller may ask for (already intersected with ACTIONS); empty: read-only. */
  kinds: ReadonlySet<ActionKindName>;
}

export interface ActionsContext {
  /** Its store is writable (the read store in ToolContext may be read-only). */
  submit: SubmitDeps;
  /** Bound for a tool's waitSeconds (default 60). */
  waitMaxSeconds: number;
  /** How long a confirmation token stays valid (5 minutes). */
  confirmTtlMs: number;
}

export interface ToolContext {
  /** The inventory, or undefined while no sync has created it yet. */
  store: Store | undefined;
  now: () => number;
  /** The freshness window: a cluster whose last successful sync is older counts as stale (overdue). */
  staleAfterMs: number;
  /**
   * What the daemon knows beyond its store: only `serve`'s HTTP endpoint has it (sync_status shows
   * it); the stdio process reads the file alone.
   */
  live?: () => LiveSyncStatus[];
}

/** One cluster as the running daemon knows it (src/sync/scheduler.ts `liveStatus`). Times are epoch ms. */
export interface LiveSyncStatus {
  cluster: string;
  /** The cycle running now: since when, its phase, and the requests it waits on. */
  cycle: {
    startedAt: number;
    phase: string;
    waitingOn: Array<{ request: string; count: number; since: number }>;
  } | null;
  /** The latest cycle's failure, until a cycle succeeds; `recorded: false` when the store could not write it. */
  lastFailure: { at: number; error: string; recorded: boolean } | null;
  /** Failures since the last success that the store could not record. */
  unrecordedFailures: number;
}

/** A running cycle as answers show it: when it started, how long it has run, what it waits on and for how long. */
export interface RunningCycle {
  startedAt: string;
  runningForMs: number;
  phase: string;
  waitingOn: Array<{ request: string; count: number; forMs: number }>;
}

export function runningCycle(cycle: NonNullable<LiveSyncStatus['cycle']>, now: number): RunningCycle {
  return {
    startedAt: new Date(cycle.startedAt).toISOString(),
    runningForMs: now - cycle.startedAt,
    phase: cycle.phase,
    waitingOn: cycle.waitingOn.map((w) => ({ request: w.request, count: w.count, forMs: now - w.since })),
  };
}

export interface ToolAnswer<Out> {
  structured: Out;
  /** A plain-text rendering for models that read text (a table, no emoji). */
  text: string;
}

/** A miss the model can recover from: no such guest, an ambiguous name, a bad cursor. */
export class ToolMiss extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ToolMiss';
  }
}

export interface ToolDefinition<In extends z.ZodObject, Out extends z.ZodObject> {
  name: string;
  title: string;
  description: string;
  input: In;
  output: Out;
  annotations: Required<Pick<ToolAnnotations, 'readOnlyHint' | 'destructiveHint' | 'idempotentHint' | 'openWorldHint'>>;
  handler(args: z.infer<In>, context: ToolContext & { store: Store }): ToolAnswer<Omit<z.infer<Out>, 'freshness'>>;
}

export const defineTool = <In extends z.ZodObject, Out extends z.ZodObject>(
  tool: ToolDefinition<In, Out>,
): ToolDefinition<In, Out> => tool;

/** Every read tool: it reads the local inventory only, changes nothing, and never calls Proxmox. */
export const READ_ONLY: ToolDefinition<z.ZodObject, z.ZodObject>['annotations'] = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};

/** What an action tool's handler gets: the caller, the writable store, and the client's means to ask the user. */
export interface ActionToolContext {
  caller: Caller;
  actions: ActionsContext;
  now: () => number;
  /** Asks the user through the client (MCP elicitation); undefined when the client did not declare it. */
  elicit: ((params: ElicitRequestFormParams) => Promise<ElicitResult>) | undefined;
  /** Aborted when the client cancels the call or goes away (ends a wait early). */
  signal: AbortSignal;
}

export interface ActionToolDefinition<In extends z.ZodObject, Out extends z.ZodObject> {
  name: string;
  title: string;
  /** The kinds the tool can ask for; offered to a caller whose scope holds one of them (all: [] means any kind). */
  kinds: readonly ActionKindName[];
  /** Described for the kinds the caller may ask for (only those are named). */
  description(kinds: readonly ActionKindName[]): string;
  /** What is listed, for those kinds (the action enum names only them). */
  listedInput(kinds: readonly ActionKindName[]): z.ZodObject;
  /** What is validated: every kind of the tool, so one outside the scope gets a refusal naming it. */
  input: In;
  output: Out;
  annotations(kinds: readonly ActionKindName[]): ToolDefinition<z.ZodObject, z.ZodObject>['annotations'];
  handler(args: z.infer<In>, context: ActionToolContext): Promise<ToolAnswer<z.infer<Out>>>;
}

export const defineActionTool = <In extends z.ZodObject, Out extends z.ZodObject>(
  tool: ActionToolDefinition<In, Out>,
): ActionToolDefinition<In, Out> => tool;
