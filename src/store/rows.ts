/**
 * Prepared upserts built from the drizzle table definitions, for the per-cycle hot path: a
 * cycle writes every guest of a 10,000-guest cluster, and building one drizzle query per row
 * costs more than the whole write. Column names and conflict keys still come from the schema.
 */
import type Database from 'better-sqlite3';
import { getTableColumns, getTableName, type Table } from 'drizzle-orm';

export interface Upsert<Row> {
  run(row: Row): void;
}

function toSql(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

export function prepareUpsert<T extends Table>(
  sqlite: Database.Database,
  table: T,
  conflict: Array<keyof T['_']['columns'] & string>,
): Upsert<T['$inferInsert']> {
  const columns = Object.entries(getTableColumns(table)) as Array<
    [string, { name: string; default?: unknown; hasDefault?: boolean }]
  >;
  const conflictNames = conflict.map((key) => columns.find(([k]) => k === key)![1].name);
  const names = columns.map(([, c]) => c.name);
  const sql =
    `INSERT INTO "${getTableName(table)}" (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map(() => '?').join(', ')}) ` +
    `ON CONFLICT (${conflictNames.map((n) => `"${n}"`).join(', ')}) DO UPDATE SET ` +
    names
      .filter((n) => !conflictNames.includes(n))
      .map((n) => `"${n}" = excluded."${n}"`)
      .join(', ');
  const statement = sqlite.prepare(sql);
  const keys = columns.map(([k, c]) => [k, c.hasDefault ? c.default : undefined] as const);
  return {
    run(row) {
      const record = row as Record<string, unknown>;
      statement.run(keys.map(([k, fallback]) => toSql(record[k] ?? fallback)));
    },
  };
}
