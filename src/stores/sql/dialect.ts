/**
 * Everything that differs between PostgreSQL and MySQL/MariaDB: the statements the SQL store runs
 * (placeholders `?`; the pg driver numbers them), its DDL, and how each says "row locked, NOWAIT".
 * The algorithm that runs them is written once, in sql-store.ts.
 */
import { ConfigError } from '../../errors'

/** Longest settlement key a marker row holds: 191 characters fit an index on a utf8mb4 VARCHAR in any InnoDB row format. */
export const MAX_SQL_KEY_LENGTH = 191

export const DEFAULT_TABLE = 'gat_settlements'

// At most 50 characters: the ledger table adds `_unsettled`, and identifiers end at 63 (PostgreSQL, which
// cuts longer ones silently) or 64 (MySQL).
const TABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]{0,49}\.)?[A-Za-z_][A-Za-z0-9_]{0,49}$/

export interface Dialect {
  readonly name: 'postgres' | 'mysql'
  /** The marker row, read without a lock: `done_at`, `attempts`. */
  readonly read: string
  /** Creates the marker row (not done, 0 attempts) unless it exists; never waits on a row lock held by a settlement (but on MySQL 8: see mysql()), failing as `isLockBusy` instead. */
  readonly insertIfAbsent: string
  /**
   * Locks the marker row for this transaction, failing at once (NOWAIT) when another holds it.
   * Also reads `tx`, which names the transaction for `markDone`.
   */
  readonly lock: string
  /**
   * Marks the row done: done_at, attempts, touched_at, key, tx. Changes nothing unless it runs in
   * the transaction that took the lock: after a handler ended that transaction (its own ROLLBACK,
   * a MySQL deadlock rolling it back), the statement would otherwise commit on its own, and the
   * payment would be marked done without the shop's writes.
   */
  readonly markDone: string
  /** Records a failed attempt: attempts, touched_at, key. */
  readonly countAttempt: string
  /** Up to `limit` keys last touched before a time, oldest first, read without locks: cutoff, limit. */
  readonly purgeCandidates: string
  /**
   * Deletes `count` of those rows by key, if still untouched since: cutoff, then the keys. By key,
   * not by a range of `touched_at`: a locking range scan would lock live rows next to the range
   * and deadlock with settlements in InnoDB.
   */
  purge(count: number): string
  /** Probes that both tables exist. */
  readonly probe: string
  /** The unsettled ledger (src/types.ts, UnsettledLedger), in `<table>_unsettled`. */
  readonly ledger: {
    /** Adds or replaces a record: key, deadline, record JSON. */
    readonly watch: string
    /** Removes `count` records by key. */
    resolve(count: number): string
    /** Soonest first: limit. */
    readonly list: string
    /** Locks due records no other sweep holds, soonest first: now, limit. */
    readonly takeDue: string
    /** Moves the deadline of `count` records: deadline, then their keys. */
    moveDeadlines(count: number): string
  }
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

function suffixed(table: string, suffix: string): string {
  return `${table.split('.').pop()}${suffix}`
}

/** The ledger's table: `<table>_unsettled`, in the same schema. */
function unsettledTable(table: string): string {
  return `${table}_unsettled`
}

function placeholders(count: number): string {
  return Array(count).fill('?').join(', ')
}

/** `transaction`: an expression naming the running transaction, the same from the lock to the done-marker. */
function common(table: string, transaction: string) {
  const u = unsettledTable(table)
  return {
    read: `SELECT done_at, attempts FROM ${table} WHERE settle_key = ?`,
    lock: `SELECT done_at, attempts, ${transaction} AS tx FROM ${table} WHERE settle_key = ? FOR UPDATE NOWAIT`,
    markDone: `UPDATE ${table} SET done_at = ?, attempts = ?, touched_at = ? WHERE settle_key = ? AND done_at IS NULL AND ${transaction} = ?`,
    countAttempt: `UPDATE ${table} SET attempts = ?, touched_at = ? WHERE settle_key = ?`,
    probe: `SELECT 1 FROM ${table}, ${u} WHERE 1 = 0`,
    purgeCandidates: `SELECT settle_key FROM ${table} WHERE touched_at < ? ORDER BY touched_at LIMIT ?`,
    purge: (count: number) => `DELETE FROM ${table} WHERE touched_at < ? AND settle_key IN (${placeholders(count)})`,
    ledger: {
      resolve: (count: number) => `DELETE FROM ${u} WHERE unsettled_key IN (${placeholders(count)})`,
      list: `SELECT record, deadline FROM ${u} ORDER BY deadline, unsettled_key LIMIT ?`,
      takeDue: `SELECT record, deadline, unsettled_key FROM ${u} WHERE deadline <= ? ORDER BY deadline, unsettled_key LIMIT ? FOR UPDATE SKIP LOCKED`,
      moveDeadlines: (count: number) => `UPDATE ${u} SET deadline = ? WHERE unsettled_key IN (${placeholders(count)})`,
    },
  }
}

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code
const errnoOf = (err: unknown): unknown => (err as { errno?: unknown } | null)?.errno

export function postgres(table: string): Dialect {
  // The transaction's id: outside it, each statement gets a new one.
  const base = common(table, 'txid_current()')
  return {
    name: 'postgres',
    ...base,
    ledger: {
      ...base.ledger,
      watch: `INSERT INTO ${unsettledTable(table)} (unsettled_key, deadline, record) VALUES (?, ?, ?) ` +
        'ON CONFLICT (unsettled_key) DO UPDATE SET deadline = EXCLUDED.deadline, record = EXCLUDED.record',
    },
    insertIfAbsent: `INSERT INTO ${table} (settle_key, attempts, touched_at) VALUES (?, 0, ?) ON CONFLICT (settle_key) DO NOTHING`,
    ddl: postgresSchema(table).split(';\n').map((s) => s.trim()).filter(Boolean),
    // lock_not_available
    isLockBusy: (err) => codeOf(err) === '55P03',
  }
}

export function mysql(table: string): Dialect {
  // MySQL has no transaction id a statement can read cheaply; 1 while a transaction is open.
  const base = common(table, '@@in_transaction')
  return {
    name: 'mysql',
    ...base,
    ledger: {
      ...base.ledger,
      watch: `INSERT INTO ${unsettledTable(table)} (unsettled_key, deadline, record) VALUES (?, ?, ?) ` +
        'ON DUPLICATE KEY UPDATE deadline = VALUES(deadline), record = VALUES(record)',
    },
    // A plain INSERT that ignores only the duplicate key: INSERT IGNORE would also turn a too-long
    // value into a warning and a truncated key. InnoDB locks a duplicate row before it ignores it,
    // so an insert meeting a marker another settlement created and locked meanwhile would wait for
    // that whole settlement: MariaDB runs it with no lock wait (the failure is read as busy). The
    // MariaDB-only comment is a comment to MySQL 8, where the insert can still wait.
    insertIfAbsent: `/*M! SET STATEMENT innodb_lock_wait_timeout = 0 FOR */ INSERT INTO ${table} (settle_key, attempts, touched_at) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE settle_key = settle_key`,
    ddl: mysqlSchema(table).split(';\n').map((s) => s.trim()).filter(Boolean),
    // MySQL 8 answers NOWAIT with ER_LOCK_NOWAIT (3572); MariaDB with ER_LOCK_WAIT_TIMEOUT (1205).
    isLockBusy: (err) => errnoOf(err) === 3572 || errnoOf(err) === 1205,
  }
}

/**
 * The PostgreSQL DDL of the settlement table and its unsettled-pay ledger, for shops whose
 * migrations own their schema. `touched_at` (epoch ms) is indexed so purging old markers reads
 * only what it deletes; the ledger's keys sort bytewise (COLLATE "C"), as every store orders them.
 */
export function postgresSchema(table = DEFAULT_TABLE): string {
  const t = checkTable(table, 'postgresSchema()')
  return `CREATE TABLE IF NOT EXISTS ${t} (
  settle_key VARCHAR(${MAX_SQL_KEY_LENGTH}) PRIMARY KEY,
  attempts INTEGER NOT NULL DEFAULT 0,
  done_at BIGINT,
  touched_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ${suffixed(t, '_touched_at')} ON ${t} (touched_at);
CREATE TABLE IF NOT EXISTS ${unsettledTable(t)} (
  unsettled_key VARCHAR(${MAX_SQL_KEY_LENGTH}) COLLATE "C" PRIMARY KEY,
  deadline BIGINT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ${suffixed(t, '_unsettled_deadline')} ON ${unsettledTable(t)} (deadline, unsettled_key);
`
}

/**
 * The MySQL/MariaDB DDL of the settlement table and its unsettled-pay ledger. Keys collate
 * bytewise: order numbers `A1` and `a1` are two orders, which a case-insensitive default
 * collation would merge.
 */
export function mysqlSchema(table = DEFAULT_TABLE): string {
  const t = checkTable(table, 'mysqlSchema()')
  return `CREATE TABLE IF NOT EXISTS ${t} (
  settle_key VARCHAR(${MAX_SQL_KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  attempts INT NOT NULL DEFAULT 0,
  done_at BIGINT NULL,
  touched_at BIGINT NOT NULL,
  INDEX ${suffixed(t, '_touched_at')} (touched_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS ${unsettledTable(t)} (
  unsettled_key VARCHAR(${MAX_SQL_KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  deadline BIGINT NOT NULL,
  record TEXT NOT NULL,
  INDEX ${suffixed(t, '_unsettled_deadline')} (deadline, unsettled_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
`
}
