/**
 * Prepared inserts and upserts built from the drizzle table definitions, for hot paths: a cycle
 * writes every guest of a 10,000-guest cluster, an agent waits on an action's insert, and building
 * one drizzle query per row costs more than the write. Column names and conflict keys still come
 * from the schema.
 */
import type Database from 'better-sqlite3';
import { getTableColumns, getTableName, type Table } from 'drizzle-orm';

/** A prepared statement writing one whole row at a time. */
export interface RowWriter<Row> {
  run(row: Row): void;
}

function toSql(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

/** A prepared `INSERT` of whole rows into `table`: a duplicate key fails, as drizzle's insert does. */
export function prepareInsert<T extends Table>(sqlite: Database.Database, table: T): RowWriter<T['$inferInsert']> {
  return prepareRowStatement(sqlite, table, '');
}

export function prepareUpsert<T extends Table>(
  sqlite: Database.Database,
  table: T,
  conflict: Array<keyof T['_']['columns'] & string>,
): RowWriter<T['$inferInsert']> {
  const columns = columnsOf(table);
  const conflictNames = conflict.map((key) => columns.find(([k]) => k === key)![1].name);
  const updates = columns
    .map(([, c]) => c.name)
    .filter((n) => !conflictNames.includes(n))
    .map((n) => `"${n}" = excluded."${n}"`);
  const onConflict = ` ON CONFLICT (${conflictNames.map((n) => `"${n}"`).join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
  return prepareRowStatement(sqlite, table, onConflict);
}

const columnsOf = (table: Table) =>
  Object.entries(getTableColumns(table)) as Array<[string, { name: string; default?: unknown; hasDefault?: boolean }]>;

function prepareRowStatement<T extends Table>(
  sqlite: Database.Database,
  table: T,
  onConflict: string,
): RowWriter<T['$inferInsert']> {
  const columns = columnsOf(table);
  const names = columns.map(([, c]) => `"${c.name}"`);
  const statement = sqlite.prepare(
    `INSERT INTO "${getTableName(table)}" (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')})${onConflict}`,
  );
  const keys = columns.map(([k, c]) => [k, c.hasDefault ? c.default : undefined] as const);
  return {
    run(row) {
      const record = row as Record<string, unknown>;
      statement.run(keys.map(([k, fallback]) => toSql(record[k] ?? fallback)));
    },
  };
}
