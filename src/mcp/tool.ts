/**
 * How a tool is defined: one file per tool exports a `defineTool(...)` object; `createMcpServer`
 * registers them all. Handlers read the store only (the server runs each in one consistent read,
 * with the freshness it reports) and return structured data plus a compact text rendering; a miss
 * the model can fix is a `ToolMiss` (an `isError` result with a hint).
 */
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { Store } from '../store/db.js';

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
