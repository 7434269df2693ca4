/**
 * Everything that differs between PostgreSQL and MySQL/MariaDB: the statements the SQL store runs
 * (placeholders `?`; the pg driver numbers them), its DDL, and how each says "row locked, NOWAIT".
 * The algorithm that runs them is written once, in sql-store.ts.
 */
import { ConfigError } from '../../errors'

/** Longest settlement key a marker row holds: 191 characters fit an index on a utf8mb4 VARCHAR in any InnoDB row format. */
export const MAX_SQL_KEY_LENGTH = 191

export const DEFAULT_TABLE = 'gat_settlements'

const TABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/

export interface Dialect {
  readonly name: 'postgres' | 'mysql'
  /** The marker row, read without a lock: `done_at`, `attempts`. */
  readonly read: string
  /** Creates the marker row (not done, 0 attempts) unless it exists; never waits on a row lock held by a settlement (but on MySQL 8: see mysql()), failing as `isLockBusy` instead. */
  readonly insertIfAbsent: string
  /** Locks the marker row for this transaction, failing at once (NOWAIT) when another holds it. */
  readonly lock: string
  /** Marks the row done: done_at, attempts, touched_at, key. */
  readonly markDone: string
  /** Records a failed attempt: attempts, touched_at, key. */
  readonly countAttempt: string
  /** Deletes up to `limit` rows last touched before a time: cutoff, limit. */
  readonly purge: string
  /** Probes that the table exists. */
  readonly probe: string
  /** CREATE TABLE and its index, each IF NOT EXISTS. */
  readonly ddl: readonly string[]
  /** Whether an error is the database refusing a NOWAIT lock another transaction holds. */
  isLockBusy(err: unknown): boolean
}

/** The table name, checked: it is written into SQL, so only plain identifiers pass. */
export function checkTable(table: unknown, where: string): string {
  if (table === undefined) return DEFAULT_TABLE
  if (typeof table === 'string' && TABLE_NAME.test(table)) return table
  throw new ConfigError(`${where}: table must be a plain SQL name (letters, digits and _, optionally schema.table) such as "${DEFAULT_TABLE}"; got ${JSON.stringify(table)}`)
}

function indexName(table: string): string {
  return `${table.split('.').pop()}_touched_at`
}

function common(table: string) {
  return {
    read: `SELECT done_at, attempts FROM ${table} WHERE settle_key = ?`,
    lock: `SELECT done_at, attempts FROM ${table} WHERE settle_key = ? FOR UPDATE NOWAIT`,
    markDone: `UPDATE ${table} SET done_at = ?, attempts = ?, touched_at = ? WHERE settle_key = ?`,
    countAttempt: `UPDATE ${table} SET attempts = ?, touched_at = ? WHERE settle_key = ?`,
    probe: `SELECT 1 FROM ${table} WHERE 1 = 0`,
  }
}

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code
const errnoOf = (err: unknown): unknown => (err as { errno?: unknown } | null)?.errno

export function postgres(table: string): Dialect {
  return {
    name: 'postgres',
    ...common(table),
    insertIfAbsent: `INSERT INTO ${table} (settle_key, attempts, touched_at) VALUES (?, 0, ?) ON CONFLICT (settle_key) DO NOTHING`,
    purge: `DELETE FROM ${table} WHERE settle_key IN (SELECT settle_key FROM ${table} WHERE touched_at < ? LIMIT ?)`,
    ddl: postgresSchema(table).split(';\n').map((s) => s.trim()).filter(Boolean),
    // lock_not_available
    isLockBusy: (err) => codeOf(err) === '55P03',
  }
}

export function mysql(table: string): Dialect {
  return {
    name: 'mysql',
    ...common(table),
    // A plain INSERT that ignores only the duplicate key: INSERT IGNORE would also turn a too-long
    // value into a warning and a truncated key. InnoDB locks a duplicate row before it ignores it,
    // so an insert meeting a marker another settlement created and locked meanwhile would wait for
    // that whole settlement: MariaDB runs it with no lock wait (the failure is read as busy). The
    // MariaDB-only comment is a comment to MySQL 8, where the insert can still wait.
    insertIfAbsent: `/*M! SET STATEMENT innodb_lock_wait_timeout = 0 FOR */ INSERT INTO ${table} (settle_key, attempts, touched_at) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE settle_key = settle_key`,
    purge: `DELETE FROM ${table} WHERE touched_at < ? ORDER BY touched_at LIMIT ?`,
    ddl: mysqlSchema(table).split(';\n').map((s) => s.trim()).filter(Boolean),
    // MySQL 8 answers NOWAIT with ER_LOCK_NOWAIT (3572); MariaDB with ER_LOCK_WAIT_TIMEOUT (1205).
    isLockBusy: (err) => errnoOf(err) === 3572 || errnoOf(err) === 1205,
  }
}

/**
 * The PostgreSQL DDL of the settlement table, for shops whose migrations own their schema.
 * `touched_at` (epoch ms) is indexed so purging old markers reads only what it deletes.
 */
export function postgresSchema(table = DEFAULT_TABLE): string {
  const t = checkTable(table, 'postgresSchema()')
  return `CREATE TABLE IF NOT EXISTS ${t} (
  settle_key VARCHAR(${MAX_SQL_KEY_LENGTH}) PRIMARY KEY,
  attempts INTEGER NOT NULL DEFAULT 0,
  done_at BIGINT,
  touched_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ${indexName(t)} ON ${t} (touched_at);
`
}

/**
 * The MySQL/MariaDB DDL of the settlement table. The key's collation is binary: order numbers
 * `A1` and `a1` are two orders, which a case-insensitive default collation would merge.
 */
export function mysqlSchema(table = DEFAULT_TABLE): string {
  const t = checkTable(table, 'mysqlSchema()')
  return `CREATE TABLE IF NOT EXISTS ${t} (
  settle_key VARCHAR(${MAX_SQL_KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  attempts INT NOT NULL DEFAULT 0,
  done_at BIGINT NULL,
  touched_at BIGINT NOT NULL,
  INDEX ${indexName(t)} (touched_at)
) ENGINE=InnoDB;
`
}
