/**
 * Everything that differs between PostgreSQL and MySQL/MariaDB: the statements the SQL store runs
 * (placeholders `?`; the pg driver numbers them), its DDL, and how each says "row locked, NOWAIT".
 * The algorithm that runs them is written once, in sql-store.ts.
 */
import { ConfigError, GuanaitongError } from '../../kernel/errors'
import type { SqlResult, SqlRow } from './types'

/**
 * What a claim script answered: done (with its memo), busy, claimed (the transaction is open), or
 * raced (the row was not done when read, gone or done when locked). `fresh`: the claim created the
 * row, already done, in its transaction (no row existed); otherwise it locked a row that was there.
 */
export type ScriptClaim =
  | { status: 'done'; memo: string | null; watched: boolean }
  | { status: 'busy' }
  | { status: 'claimed'; fresh: boolean; attempts: number; tx: unknown; watched: boolean; note: string | null }
  | { status: 'raced' }

/** Longest settlement key a marker row holds: 191 characters fit an index on a utf8mb4 VARCHAR in any InnoDB row format. */
export const MAX_SQL_KEY_LENGTH = 191

/** The same keys in bytes on MySQL: 191 code points of at most 4 UTF-8 bytes each. */
const MYSQL_KEY_BYTES = MAX_SQL_KEY_LENGTH * 4

export const DEFAULT_TABLE = 'gat_settlements'

// At most 50 characters: the ledger table adds `_unsettled`, and identifiers end at 63 (PostgreSQL, which
// cuts longer ones silently) or 64 (MySQL).
const TABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]{0,49}\.)?[A-Za-z_][A-Za-z0-9_]{0,49}$/

export interface Dialect {
  readonly name: 'postgres' | 'mysql'
  /** The marker row, read without a lock: `done_at`, `attempts`, `memo`, `watched`. */
  readonly read: string
  /**
   * Creates the marker row (not done, 0 attempts) unless it exists: key, now. Never waits for a
   * settlement holding the row or inserting it (but on MySQL 8: see mysql()), failing as
   * `isLockBusy` instead. On PostgreSQL inside a transaction, the rest of it runs without lock waits.
   */
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
  /**
   * Counts a failed attempt on a row that is not done, creating it (1 attempt) when the rollback
   * took it away (a fresh claim's row): key, now. Never waits for another attempt holding the row.
   */
  readonly countAttempt: string
  /** Up to `limit` keys last touched before a time, oldest first, read without locks: cutoff, limit. */
  readonly purgeCandidates: string
  /**
   * Deletes `count` of those rows by key, if still untouched since: cutoff, then the keys. By key,
   * not by a range of `touched_at`: a locking range scan would lock live rows next to the range
   * and deadlock with settlements in InnoDB.
   */
  purge(count: number): string
  /** Marks a key watched (issue 20), creating its not-done row when missing: key, now. Then the ledger record is written. */
  readonly mark: string
  /** Clears the marks of `count` keys. */
  unmark(count: number): string
  /** Keeps a note on a not-done row this transaction locked: note, touched_at, key. */
  readonly keepNote: string
  /** Fails unless both tables exist with this version's columns; `probed` then says whether the rest of the schema is there. */
  readonly probe: string
  /** Whether the probe's answer shows this version's schema (on MySQL, its procedures). */
  probed(result: SqlResult): boolean
  /**
   * The settlement in two round trips, on a connection the store drives itself (the package's own
   * pg and mysql2 drivers; a driver of your own takes the statements above, one by one).
   */
  readonly script: {
    /**
     * Reads the marker row and opens a transaction. Missing: inserts it there already done
     * (done_at and touched_at `now`, 1 attempt, `memo`), refusing at once, as busy, to wait for
     * another settlement's insert of it (`fresh`). There but not done: locks it NOWAIT. Done:
     * `done`. `claimed` leaves the transaction open; `done` and `busy` leave one open only where
     * `openAfter` says so, for the store to roll back.
     */
    claim(key: string, now: number, memo: string | null): [sql: string, params: unknown[]]
    /** What `claim` answered, from its result sets. */
    readClaim(results: readonly SqlResult[]): ScriptClaim
    /** Whether a claim answered `done` or `busy` left a transaction open (PostgreSQL: its BEGIN always runs). */
    readonly openAfter: boolean
    /**
     * COMMITs the claim's transaction, after marking the row done when the claim locked it
     * (not `fresh`: the fresh row is done already). Fails before COMMIT when that transaction had
     * ended (`isLockLost`).
     */
    finish(claim: { fresh: boolean; key: string; tx: unknown; attempt: number; memo: string | null; claimedAt: number }, now: number): [sql: string, params: unknown[]]
    /**
     * After a lost fresh claim (the handler ended the transaction itself): undoes the done-marker
     * that the handler's own COMMIT made permanent with its writes, if it did, so that the next
     * attempt runs the handler, as with a claimed row that was there (nothing when
     * `finish` does it itself, as MySQL's procedure). Touches only the row that claim created.
     */
    unclaim?(claim: { key: string; tx: unknown }): [sql: string, params: unknown[]]
    /** Whether `finish` failed because the transaction that took the lock had ended. */
    isLockLost(err: unknown): boolean
    /** Whether a script failed because the schema lacks this version's routines (`createTable: false` without the upgrade). */
    isMissingRoutine(err: unknown): boolean
    /** Checks `finish` ended in a COMMIT. */
    readFinish(results: readonly SqlResult[]): void
  }
  /** Statements that bring a table created by 0.2 to this version's shape; each can run again. */
  readonly upgrade: readonly string[]
  /** The exports that give the DDL and the upgrade, for messages. */
  readonly exports: { schema: 'postgresSchema()' | 'mysqlSchema()'; upgrade: 'postgresUpgrade' | 'mysqlUpgrade' }
  /** The unsettled ledger (src/kernel/types.ts, UnsettledLedger), in `<table>_unsettled`. */
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
    read: `SELECT done_at, attempts, memo, watched FROM ${table} WHERE settle_key = ?`,
    lock: `SELECT done_at, attempts, memo, watched, note, ${transaction} AS tx FROM ${table} WHERE settle_key = ? FOR UPDATE NOWAIT`,
    unmark: (count: number) => `UPDATE ${table} SET watched = false WHERE watched AND settle_key IN (${placeholders(count)})`,
    keepNote: `UPDATE ${table} SET note = ?, touched_at = ? WHERE settle_key = ? AND done_at IS NULL`,
    probe: `SELECT memo, watched, note FROM ${table}, ${u} WHERE 1 = 0`,
    markDone: `UPDATE ${table} SET done_at = ?, attempts = ?, touched_at = ?, memo = ? WHERE settle_key = ? AND done_at IS NULL AND ${transaction} = ?`,
    // A watched row stays while its ledger record may still be reported.
    purgeCandidates: `SELECT settle_key FROM ${table} WHERE touched_at < ? AND NOT watched ORDER BY touched_at LIMIT ?`,
    purge: (count: number) => `DELETE FROM ${table} WHERE touched_at < ? AND NOT watched AND settle_key IN (${placeholders(count)})`,
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
const firstRow = (result: SqlResult | undefined) => result?.rows[0]

/** A flag as either database returns it: PostgreSQL a boolean, MySQL a TINYINT. */
export const isTrue = (value: unknown): boolean => value === true || Number(value) === 1

/** Raised by the done-marker when the transaction that took the lock had ended (PostgreSQL: division_by_zero, from `1 / 0 rows`). */
const LOCK_LOST = 'the transaction that took the lock had ended before the done-marker (did the handler commit or roll back ctx.tx?)'

/**
 * PostgreSQL has no NOWAIT for an insert that meets another transaction's uncommitted insert of
 * the same key: it waits for that transaction. A lock timeout of 1 ms, set for the transaction
 * (`set_config(…, true)`), turns that wait into lock_not_available, read as busy. In a FROM clause
 * it is set before the insert's row is built; outside a transaction block it ends with the statement.
 */
const NO_LOCK_WAIT = "(SELECT set_config('lock_timeout', '1ms', true)) AS no_lock_wait"

export function postgres(table: string): Dialect {
  // The transaction's id: outside it, each statement gets a new one.
  const base = common(table, 'txid_current()')
  const finishLocked = `WITH marked AS (UPDATE ${table} SET done_at = ?, attempts = ?, touched_at = ?, memo = ? ` +
    'WHERE settle_key = ? AND done_at IS NULL AND txid_current() = ? RETURNING 1) ' +
    'SELECT 1 / count(*)::int AS marked FROM marked; COMMIT'
  return {
    name: 'postgres',
    ...base,
    // The columns, through the subquery (which fails without them), and the claim function.
    probe: `SELECT to_regprocedure('${procedure(table, 'claim')}(varchar, bigint, text)') IS NOT NULL AS claim WHERE NOT EXISTS (${base.probe})`,
    probed: (result) => firstRow(result)?.claim === true,
    ledger: {
      ...base.ledger,
      watch: `INSERT INTO ${unsettledTable(table)} (unsettled_key, deadline, record) VALUES (?, ?, ?) ` +
        'ON CONFLICT (unsettled_key) DO UPDATE SET deadline = EXCLUDED.deadline, record = EXCLUDED.record',
    },
    insertIfAbsent: `INSERT INTO ${table} (settle_key, attempts, touched_at) SELECT ?::varchar, 0, ?::bigint FROM ${NO_LOCK_WAIT} ON CONFLICT (settle_key) DO NOTHING`,
    countAttempt: `INSERT INTO ${table} AS m (settle_key, attempts, touched_at) SELECT ?::varchar, 1, ?::bigint FROM ${NO_LOCK_WAIT} ` +
      'ON CONFLICT (settle_key) DO UPDATE SET attempts = m.attempts + 1, touched_at = EXCLUDED.touched_at WHERE m.done_at IS NULL',
    mark: `INSERT INTO ${table} (settle_key, attempts, touched_at, watched) VALUES (?, 0, ?, true) ON CONFLICT (settle_key) DO UPDATE SET watched = true`,
    script: {
      // One simple-protocol query (values inlined by the driver's escapeLiteral): BEGIN, then the
      // claim function of postgresSchema(), whose statements' plans PostgreSQL keeps per
      // connection. A statement cannot end the script early, so BEGIN always runs: `done` leaves
      // a transaction that wrote nothing, which the pg driver parks for the next claim to roll back.
      claim: (key, now, memo) => [`BEGIN; SELECT * FROM ${procedure(table, 'claim')}(?::varchar, ?::bigint, ?::text)`, [key, now, memo]],
      readClaim: (results) => readClaimRow(table, firstRow(results[1])),
      openAfter: true,
      // The handler ended the transaction: 1 / 0 fails the script before its COMMIT (a fresh row:
      // another transaction id; a locked row: no row marked).
      finish: (c, now) => (c.fresh
        ? ['SELECT 1 / (txid_current() = ?)::int AS ours; COMMIT', [c.tx]]
        : [finishLocked, [now, c.attempt, now, c.memo, c.key, c.tx]]),
      // The row the claim inserted carries that transaction's id in xmin (its low 32 bits) until it changes.
      unclaim: (c) => [`UPDATE ${table} SET done_at = NULL, memo = NULL WHERE settle_key = ? AND done_at IS NOT NULL ` +
        'AND xmin = (?::bigint % 4294967296)::text::xid', [c.key, String(c.tx)]],
      isLockLost: (err) => codeOf(err) === '22012',
      // undefined_function
      isMissingRoutine: (err) => codeOf(err) === '42883',
      readFinish: (results) => {
        // PostgreSQL answers COMMIT of a transaction an error aborted with ROLLBACK, not an error.
        const command = (results.at(-1) as { command?: string } | undefined)?.command
        if (command !== undefined && command !== 'COMMIT') throw new GuanaitongError(`COMMIT was answered ${command}: the transaction was rolled back`, 'STORE_FAILED')
      },
    },
    upgrade: [
      `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS memo TEXT`,
      `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS watched BOOLEAN NOT NULL DEFAULT false`,
      `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS note TEXT`,
    ],
    ddl: postgresSchemaStatements(table),
    exports: { schema: 'postgresSchema()', upgrade: 'postgresUpgrade' },
    // lock_not_available
    isLockBusy: (err) => codeOf(err) === '55P03',
  }
}

/** A claim from the row a claim routine answered (both databases' `_claim_v2`, in postgresSchema() and mysqlSchema()). */
function readClaimRow(table: string, row: SqlRow | undefined): ScriptClaim {
  switch (row?.status) {
    case 'done': return { status: 'done', memo: (row.memo as string | null) ?? null, watched: isTrue(row.watched) }
    case 'fresh': return { status: 'claimed', fresh: true, attempts: 0, tx: row.tx, watched: false, note: null }
    case 'claimed': return { status: 'claimed', fresh: false, attempts: Number(row.attempts), tx: row.tx, watched: isTrue(row.watched), note: (row.note as string | null) ?? null }
    case 'busy': return { status: 'busy' }
    case 'raced': return { status: 'raced' }
    default: throw new GuanaitongError(`the claim answered ${row ? `status ${JSON.stringify(row.status)}` : 'no row'}; is ${procedure(table, 'claim')} this version's?`, 'STORE_FAILED')
  }
}

export function mysql(table: string): Dialect {
  // MySQL has no transaction id a statement can read cheaply; 1 while a transaction is open.
  const base = common(table, '@@in_transaction')
  const ours = (name: string) => `'${name.split('.').pop()}'`
  return {
    name: 'mysql',
    ...base,
    // The columns, through the subquery (which fails without them), and the procedures this version calls.
    probe: `SELECT count(*) AS procedures FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${table.includes('.') ? `'${table.split('.')[0]}'` : 'DATABASE()'} ` +
      `AND ROUTINE_NAME IN (${ours(procedure(table, 'claim'))}, ${ours(procedure(table, 'finish'))}) AND NOT EXISTS (${base.probe})`,
    probed: (result) => Number(firstRow(result)?.procedures) === 2,
    ledger: {
      ...base.ledger,
      watch: `INSERT INTO ${unsettledTable(table)} (unsettled_key, deadline, record) VALUES (?, ?, ?) ` +
        'ON DUPLICATE KEY UPDATE deadline = VALUES(deadline), record = VALUES(record)',
    },
    // A plain INSERT that ignores only the duplicate key: INSERT IGNORE would also turn a too-long
    // value into a warning and a truncated key. Without lock waits on MariaDB (MARIADB_NO_WAIT).
    insertIfAbsent: `${MARIADB_NO_WAIT} INSERT INTO ${table} (settle_key, attempts, touched_at) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE settle_key = settle_key`,
    // Assignments run left to right: done_at, read by the second, is not one of them.
    countAttempt: `${MARIADB_NO_WAIT} INSERT INTO ${table} (settle_key, attempts, touched_at) VALUES (?, 1, ?) ` +
      'ON DUPLICATE KEY UPDATE attempts = IF(done_at IS NULL, attempts + 1, attempts), touched_at = IF(done_at IS NULL, VALUES(touched_at), touched_at)',
    mark: `INSERT INTO ${table} (settle_key, attempts, touched_at, watched) VALUES (?, 0, ?, true) ON DUPLICATE KEY UPDATE watched = true`,
    script: {
      // One CALL each (stored procedures from mysqlSchema()): a procedure may leave the
      // transaction it started open, so a duplicate starts none, and a pool needs no multipleStatements.
      claim: (key, now, memo) => [`CALL ${procedure(table, 'claim')}(?, ?, ?)`, [key, now, memo]],
      readClaim: (results) => readClaimRow(table, firstRow(results[0])),
      openAfter: false,
      // The procedure also undoes a fresh row the handler's own COMMIT made permanent (no unclaim).
      finish: (c, now) => [`CALL ${procedure(table, 'finish')}(?, ?, ?, ?, ?, ?)`, [c.fresh, c.fresh ? c.claimedAt : now, c.attempt, c.memo, c.key, c.tx]],
      // The procedure's SIGNAL (SQLSTATE 45000), raised after its ROLLBACK.
      isLockLost: (err) => (err as { sqlState?: unknown } | null)?.sqlState === '45000',
      // ER_SP_DOES_NOT_EXIST
      isMissingRoutine: (err) => errnoOf(err) === 1305,
      readFinish: () => {},
    },
    upgrade: [
      `ALTER TABLE ${table} MODIFY settle_key VARBINARY(${MYSQL_KEY_BYTES}) NOT NULL`,
      `ALTER TABLE ${table} ADD COLUMN /*M! IF NOT EXISTS */ memo TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL`,
      `ALTER TABLE ${table} ADD COLUMN /*M! IF NOT EXISTS */ watched BOOLEAN NOT NULL DEFAULT false`,
      `ALTER TABLE ${table} ADD COLUMN /*M! IF NOT EXISTS */ note TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL`,
      `ALTER TABLE ${unsettledTable(table)} MODIFY unsettled_key VARBINARY(${MYSQL_KEY_BYTES}) NOT NULL`,
    ],
    ddl: mysqlSchemaStatements(table),
    exports: { schema: 'mysqlSchema()', upgrade: 'mysqlUpgrade' },
    // MySQL 8 answers NOWAIT with ER_LOCK_NOWAIT (3572); MariaDB with ER_LOCK_WAIT_TIMEOUT (1205).
    isLockBusy: (err) => errnoOf(err) === 3572 || errnoOf(err) === 1205,
  }
}

/**
 * A routine of the schema (MySQL's procedures, PostgreSQL's claim function), named after the
 * table and versioned, so that a new shape ships beside the old one and instances of both run
 * during a rolling upgrade. `_v2`: the claim inserts a missing row already done in its
 * transaction; 0.3's MySQL `_v1` created it on its own (PostgreSQL had no routine before `_v2`).
 */
function procedure(table: string, what: 'claim' | 'finish'): string {
  return `${table}_${what}_v2`
}

/**
 * MariaDB's lock wait of 0 for one statement, in a comment MySQL skips: InnoDB locks a duplicate
 * row before it ignores or updates it, so an insert meeting a row another settlement holds, or
 * inserts, would wait for that whole settlement. The failure is read as busy. MySQL 8 has no
 * such statement option: there the insert waits (innodb_lock_wait_timeout).
 */
const MARIADB_NO_WAIT = '/*M! SET STATEMENT innodb_lock_wait_timeout = 0 FOR */'

/**
 * The PostgreSQL DDL of the settlement table and its unsettled-pay ledger, for shops whose
 * migrations own their schema. `touched_at` (epoch ms) is indexed so purging old markers reads
 * only what it deletes; the ledger's keys sort bytewise (COLLATE "C"), as every store orders them.
 * `memo` is what the settlement core recorded with the done-marker.
 */
export function postgresSchema(table = DEFAULT_TABLE): string {
  return `${postgresSchemaStatements(table, 'postgresSchema()').join(';\n')};\n`
}

/** `postgresSchema()` as one statement per string, for a migration tool that runs them one at a time. */
export function postgresSchemaStatements(table = DEFAULT_TABLE, where = 'postgresSchemaStatements()'): string[] {
  const t = checkTable(table, where)
  return [
    // The claim of settlements in two round trips (dialect.ts, script.claim): the transaction is
    // the caller's (BEGIN runs before it), so a fresh row commits or rolls back with the shop's
    // writes. A missing row is inserted already done ('fresh') under a lock timeout of 1 ms, which
    // turns a wait for another settlement's uncommitted insert of the key into lock_not_available
    // (busy); the shop's own lock timeout is given back before its statements run. A row there but
    // not done is locked NOWAIT. No EXCEPTION block: a subtransaction would give the fresh row an
    // xmin other than the transaction's id, which the unclaim matches.
    `CREATE OR REPLACE FUNCTION ${procedure(t, 'claim')}(k VARCHAR, now_ms BIGINT, memo_in TEXT,
  OUT status TEXT, OUT memo TEXT, OUT watched BOOLEAN, OUT attempts INTEGER, OUT note TEXT, OUT tx BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
  seen RECORD;
  saved_lock_timeout TEXT;
  inserted BOOLEAN;
BEGIN
  SELECT m.done_at, m.memo, m.watched INTO seen FROM ${t} m WHERE m.settle_key = k;
  IF NOT FOUND THEN
    saved_lock_timeout := current_setting('lock_timeout');
    PERFORM set_config('lock_timeout', '1ms', true);
    INSERT INTO ${t} (settle_key, attempts, done_at, touched_at, memo) VALUES (k, 1, now_ms, now_ms, memo_in) ON CONFLICT (settle_key) DO NOTHING;
    inserted := FOUND;
    PERFORM set_config('lock_timeout', saved_lock_timeout, true);
    IF inserted THEN
      status := 'fresh';
      tx := txid_current();
      RETURN;
    END IF;
  ELSIF seen.done_at IS NOT NULL THEN
    status := 'done';
    memo := seen.memo;
    watched := seen.watched;
    RETURN;
  END IF;
  SELECT m.attempts, m.watched, m.note INTO seen FROM ${t} m WHERE m.settle_key = k AND m.done_at IS NULL FOR UPDATE NOWAIT;
  IF NOT FOUND THEN
    status := 'raced';
    RETURN;
  END IF;
  status := 'claimed';
  attempts := seen.attempts;
  watched := seen.watched;
  note := seen.note;
  tx := txid_current();
END
$$`,
    `CREATE TABLE IF NOT EXISTS ${t} (
  settle_key VARCHAR(${MAX_SQL_KEY_LENGTH}) PRIMARY KEY,
  attempts INTEGER NOT NULL DEFAULT 0,
  done_at BIGINT,
  touched_at BIGINT NOT NULL,
  memo TEXT,
  watched BOOLEAN NOT NULL DEFAULT false,
  note TEXT
)`,
    `CREATE INDEX IF NOT EXISTS ${suffixed(t, '_touched_at')} ON ${t} (touched_at)`,
    `CREATE TABLE IF NOT EXISTS ${unsettledTable(t)} (
  unsettled_key VARCHAR(${MAX_SQL_KEY_LENGTH}) COLLATE "C" PRIMARY KEY,
  deadline BIGINT NOT NULL,
  record TEXT NOT NULL
)`,
    `CREATE INDEX IF NOT EXISTS ${suffixed(t, '_unsettled_deadline')} ON ${unsettledTable(t)} (deadline, unsettled_key)`,
  ]
}

/**
 * The MySQL/MariaDB DDL of the settlement table, its unsettled-pay ledger and the two stored
 * procedures a settlement calls, as the mysql client runs it (DELIMITER around the procedures).
 * Keys are VARBINARY, compared byte for byte: `A1` and `a1` are two orders, and so are `A1` and
 * `A1 ` (a utf8mb4_bin column pads with spaces on MariaDB and MySQL 5.7, and would merge them).
 */
export function mysqlSchema(table = DEFAULT_TABLE): string {
  return mysqlSchemaStatements(table, 'mysqlSchema()')
    .map((statement) => (isRoutine(statement) ? `DELIMITER //\n${statement} //\nDELIMITER ;\n` : `${statement};\n`))
    .join('')
}

/** `mysqlSchema()` as one statement per string, without DELIMITER, for a migration tool or driver that runs them one at a time. */
export function mysqlSchemaStatements(table = DEFAULT_TABLE, where = 'mysqlSchemaStatements()'): string[] {
  const t = checkTable(table, where)
  const key = `VARBINARY(${MYSQL_KEY_BYTES}) NOT NULL`
  // No lock wait: MariaDB refuses NOWAIT in a procedure and takes a zero lock wait instead; MySQL 8
  // takes NOWAIT on the lock (its insert can wait, as insertIfAbsent's). Each reads only its own
  // comment: MariaDB skips /*!80000 */, MySQL skips /*M! */.
  const noWait = MARIADB_NO_WAIT
  const memo = 'TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin'
  return [
    // The procedures first: a store that finds the tables (its probe) can call them, also while
    // another instance is still creating the schema. They may name tables that do not exist yet.
    // Done starts no transaction. Missing: the row is inserted already done in the transaction
    // the claim leaves open ('fresh'); a row there, or created since the read (the duplicate key
    // error), is locked. Busy (a row another settlement holds or is inserting) rolls back.
    `CREATE PROCEDURE IF NOT EXISTS ${procedure(t, 'claim')}(IN k VARBINARY(${MYSQL_KEY_BYTES}), IN now_ms BIGINT, IN memo_in ${memo})
BEGIN
  DECLARE done BIGINT DEFAULT NULL;
  DECLARE tries INT DEFAULT NULL;
  DECLARE kept TEXT DEFAULT NULL;
  DECLARE marked BOOLEAN DEFAULT false;
  DECLARE there BOOLEAN DEFAULT true;
  DECLARE EXIT HANDLER FOR 1205, 3572 BEGIN ROLLBACK; SELECT 'busy' AS status; END;
  SELECT done_at, attempts, memo, watched INTO done, tries, kept, marked FROM ${t} WHERE settle_key = k;
  IF done IS NOT NULL THEN
    SELECT 'done' AS status, done AS done_at, kept AS memo, marked AS watched;
  ELSE
    START TRANSACTION;
    IF tries IS NULL THEN
      BEGIN
        DECLARE CONTINUE HANDLER FOR 1062 SET there = true;
        SET there = false;
        ${noWait} INSERT INTO ${t} (settle_key, attempts, done_at, touched_at, memo) VALUES (k, 1, now_ms, now_ms, memo_in);
      END;
    END IF;
    IF NOT there THEN
      SELECT 'fresh' AS status, @@in_transaction AS tx;
    ELSE
      SET tries = NULL;
      ${noWait} SELECT attempts, watched, note INTO tries, marked, kept FROM ${t} WHERE settle_key = k AND done_at IS NULL FOR UPDATE /*!80000 NOWAIT */;
      IF tries IS NULL THEN
        ROLLBACK;
        SELECT 'raced' AS status;
      ELSE
        SELECT 'claimed' AS status, tries AS attempts, marked AS watched, kept AS note, @@in_transaction AS tx;
      END IF;
    END IF;
  END IF;
END`,
    // Commits the transaction the claim opened: a fresh row (seen only by that transaction until
    // COMMIT) as it is, a locked row once marked done. When that transaction had ended, rolls back,
    // undoes the fresh row the handler's own COMMIT may have made permanent, and fails.
    `CREATE PROCEDURE IF NOT EXISTS ${procedure(t, 'finish')}(IN fresh BOOLEAN, IN done_ms BIGINT, IN tries INT, IN memo_in ${memo}, IN k VARBINARY(${MYSQL_KEY_BYTES}), IN tx INT)
BEGIN
  DECLARE ours INT DEFAULT 0;
  IF fresh THEN
    IF @@in_transaction = tx THEN
      SELECT count(*) INTO ours FROM ${t} WHERE settle_key = k;
    END IF;
  ELSE
    UPDATE ${t} SET done_at = done_ms, attempts = tries, touched_at = done_ms, memo = memo_in WHERE settle_key = k AND done_at IS NULL AND @@in_transaction = tx;
    SET ours = ROW_COUNT();
  END IF;
  IF ours <> 1 THEN
    ROLLBACK;
    IF fresh THEN
      BEGIN
        DECLARE CONTINUE HANDLER FOR 1205 BEGIN END;
        ${noWait} UPDATE ${t} SET done_at = NULL, memo = NULL WHERE settle_key = k AND done_at = done_ms AND attempts = 1 AND memo <=> memo_in;
      END;
    END IF;
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the transaction that took the lock had ended before the done-marker';
  END IF;
  COMMIT;
END`,
    `CREATE TABLE IF NOT EXISTS ${t} (
  settle_key ${key} PRIMARY KEY,
  attempts INT NOT NULL DEFAULT 0,
  done_at BIGINT NULL,
  touched_at BIGINT NOT NULL,
  memo TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  watched BOOLEAN NOT NULL DEFAULT false,
  note TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  INDEX ${suffixed(t, '_touched_at')} (touched_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${unsettledTable(t)} (
  unsettled_key ${key} PRIMARY KEY,
  deadline BIGINT NOT NULL,
  record TEXT NOT NULL,
  INDEX ${suffixed(t, '_unsettled_deadline')} (deadline, unsettled_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  ]
}

export { LOCK_LOST }

/**
 * What brings a PostgreSQL table created by 0.2 or 0.3 to this version's shape, for
 * `createTable: false`: the `memo`, `watched` and `note` columns, then the claim function
 * (`_v2`). Run them in a migration before deploying this version; each can run again. With
 * `createTable: true` the store runs them itself when it finds an older shape.
 */
export function postgresUpgrade(table = DEFAULT_TABLE): string[] {
  const t = checkTable(table, 'postgresUpgrade()')
  return [...postgres(t).upgrade, ...postgresSchemaStatements(t, 'postgresUpgrade()').filter(isRoutine)]
}

function isRoutine(statement: string): boolean {
  return /^CREATE (OR REPLACE FUNCTION|PROCEDURE)/.test(statement)
}

/**
 * What brings a MySQL table created by 0.2 or 0.3 to this version's shape, for `createTable: false`:
 * VARBINARY keys, the `memo`, `watched` and `note` columns, then this version's procedures
 * (`_v2`; 0.3's `_v1` can stay while older instances still call them). Each statement can run
 * again. With `createTable: true` the store runs them itself when it finds an older shape.
 */
export function mysqlUpgrade(table = DEFAULT_TABLE): string[] {
  const t = checkTable(table, 'mysqlUpgrade()')
  return [...mysql(t).upgrade, ...mysqlSchemaStatements(t, 'mysqlUpgrade()').filter(isRoutine)]
}
