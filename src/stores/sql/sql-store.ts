import { DEFAULTS } from '../../kernel/defaults'
import { causeMessage, GuanaitongError, ParamError } from '../../kernel/errors'
import type { PeekResult, TransactionalResult, TransactionalStore, UnsettledLedger, UnsettledRecord } from '../../kernel/types'
import type { SqlDriver, SqlRow, SqlStoreOptions, SqlTransaction } from './types'
import { checkKey, checkOptions, checkPoolOrDriver, type Rules } from '../../kernel/validate'
import { TurnBatch } from '../turn-batch'
import { checkLedgerKey, checkLimit, checkTake, checkUnsettledRecord, decodeUnsettled, encodeUnsettled } from '../unsettled-record'
import { checkTable, isTrue, LOCK_LOST, MAX_SQL_KEY_LENGTH, type Dialect, type ScriptClaim } from './dialect'
import { hasSessions, type SessionDriver, type SqlSession } from './drivers'
import { guardTx } from './guard'

/** What a SQL store class brings to the shared core. */
export interface SqlStoreKind<Tx> {
  /** The class name, for messages. */
  name: string
  rules: Rules
  /** How to make the pool, for messages. */
  example: string
  dialect(table: string): Dialect
  /** The driver for the pool the shop passed (checked by `rules`). */
  driver(pool: unknown): SqlDriver<Tx>
}

const BUSY: TransactionalResult = Object.freeze({ status: 'busy' })

/** Ledger keys one DELETE removes. */
const REMOVALS_PER_CALL = 500

/** Rows one purge statement deletes: small enough not to hold locks long. */
const PURGE_BATCH = 1000

/**
 * Exactly-once settlement in the shop's own database. One marker row per key.
 *
 * With the package's own drivers, two round trips and one COMMIT (settleInScripts). The claim
 * script reads the row without a lock (done: `done`, a duplicate's one round trip; on PostgreSQL
 * the transaction its script opened is rolled back by the next claim's script, giveBackUnclaimed), then
 * opens the transaction the shop's work runs in. A missing row is inserted there already done
 * (`fresh`: no UPDATE and no lock later), refusing at once, as `busy`, to wait for another
 * settlement's uncommitted insert of it. A row that is there but not done (a failed attempt, a
 * mark, a note) is locked NOWAIT, as is held means `busy`. The finish script checks that the
 * transaction is still the claim's, marks a locked row done, and COMMITs: the shop's writes and
 * the marker commit together or not at all; a ROLLBACK or a crash takes a fresh row with them. A
 * fresh marker that a handler's own COMMIT made permanent is set back to not done (unclaim), so
 * that the next attempt runs the handler, as for a locked row.
 *
 * A driver of your own runs the older steps, one statement each:
 *
 * 1. Read the row without a lock: done means `done` at once (a duplicate costs one round trip).
 *    Create it when missing, outside the transaction, so a duplicate never waits on an insert;
 *    an insert that meets the row another settlement created and holds, or is inserting, is `busy`.
 * 2. BEGIN, and lock the row with NOWAIT: held by another transaction means `busy` at once.
 * 3. Done by now (settled between 1 and 2) means `done`; otherwise run `work` in the
 *    transaction, mark the row done in it, and COMMIT.
 *
 * Attempts are counted in the row: by the done-marker on success, by one upsert after a ROLLBACK
 * (which creates the row a fresh claim's rollback took away; skipped when another attempt holds
 * the row; lost if the process dies). `peek` and `status` see a fresh settlement in flight only
 * through an insert of their own, in a transaction they roll back.
 *
 * The unsettled-pay ledger lives in `<table>_unsettled`, one row per order, indexed by deadline.
 */
export class SqlStore<Tx> implements TransactionalStore<Tx>, UnsettledLedger {
  readonly transactional = true
  readonly retentionMs: number
  /** The settlement table. */
  readonly table: string
  private readonly purgeEveryMs: number | false
  private readonly createTable: boolean
  private schemaReady: Promise<void> | undefined
  private lastPurge = -Infinity
  private purging: Promise<number> | undefined

  private readonly name: string
  // The marks first, then the records (see watchUnsettled).
  private readonly removals = new TurnBatch<string>(async (keys) => {
    await this.db('resolveUnsettled', () => this.driver.query(this.dialect.unmark(keys.length), keys))
    await this.db('resolveUnsettled', () => this.driver.query(this.dialect.ledger.resolve(keys.length), keys))
  }, REMOVALS_PER_CALL)
  private readonly driver: SqlDriver<Tx>
  private readonly dialect: Dialect

  /** `kind` says how the subclass differs: its name, option rules, dialect and pool driver. */
  constructor(kind: SqlStoreKind<Tx>, options: SqlStoreOptions & { pool?: unknown; driver?: SqlDriver<Tx> }) {
    const where = `new ${kind.name}()`
    checkOptions(where, options, kind.rules, kind.example)
    checkPoolOrDriver(where, options, kind.example)
    this.name = kind.name
    this.table = checkTable(options.table, where)
    this.dialect = kind.dialect(this.table)
    this.driver = options.driver ?? kind.driver(options.pool)
    this.retentionMs = options.retentionMs ?? DEFAULTS.retentionMs
    this.purgeEveryMs = options.purgeEveryMs ?? DEFAULTS.purgeEveryMs
    this.createTable = options.createTable ?? true
  }

  async settle(key: string, work: (tx: Tx, attempt: number) => Promise<void>, memo?: string): Promise<TransactionalResult> {
    checkSqlKey(key)
    this.checkText('key', key)
    if (memo !== undefined) this.checkText('memo', memo)
    await this.ready()
    if (hasSessions(this.driver)) return this.settleInScripts(this.driver, key, work, memo)
    const seen = await this.db('read', () => this.driver.query(this.dialect.read, [key]))
    if (isDone(seen.rows[0])) return done(seen.rows[0])
    if (seen.rows.length === 0) {
      try {
        await this.driver.query(this.dialect.insertIfAbsent, [key, Date.now()])
      } catch (err) {
        // Another settlement created the row since the read, and holds it.
        if (this.dialect.isLockBusy(err)) return BUSY
        throw storeFailed('insert', err)
      }
    }

    const t = await this.db('begin', () => this.driver.begin())
    const marker = await this.lockMarker(t, key)
    if (marker === 'busy') return BUSY
    if (!marker || isDone(marker)) {
      await rollback(t)
      if (marker) return done(marker)
      throw vanished(key)
    }

    const attempt = Number(marker.attempts) + 1
    try {
      await this.runWork(key, t.tx, attempt, work)
    } catch (err) {
      await rollback(t)
      await this.countFailedAttempt(key)
      throw err
    }
    let marked: number
    try {
      const now = Date.now()
      marked = (await t.query(this.dialect.markDone, [now, attempt, now, memo ?? null, key, marker.tx])).affected
    } catch (err) {
      await rollback(t)
      throw storeFailed('done-marker', err)
    }
    if (marked !== 1) {
      await rollback(t)
      throw storeFailed('done-marker', undefined, LOCK_LOST)
    }
    // Once COMMIT is sent, the connection is the driver's: it gives it back or destroys it.
    await this.db('commit', () => t.commit())
    this.purgeWhenDue()
    return completed(isTrue(marker.watched), marker.note)
  }

  /** `settle` in two round trips, on a session of the package's own driver (see the class comment). */
  private async settleInScripts(driver: SessionDriver<Tx>, key: string, work: (tx: Tx, attempt: number) => Promise<void>, memo: string | undefined): Promise<TransactionalResult> {
    const script = this.dialect.script
    const s = await this.db('connect', () => driver.session())
    const claimedAt = Date.now()
    let claim: ScriptClaim
    try {
      claim = script.readClaim(await s.script(...script.claim(key, claimedAt, memo ?? null)))
    } catch (err) {
      if (this.dialect.isLockBusy(err)) {
        this.giveBackUnclaimed(s)
        return BUSY
      }
      // The database failed: the open transaction is rolled back, or the connection destroyed.
      this.rollBackSession(s)
      // Tables made by migrations that left out this version's routines.
      if (script.isMissingRoutine(err)) throw storeFailed(`claim (run the statements of ${this.dialect.exports.upgrade}('${this.table}'))`, err)
      throw storeFailed('claim', err)
    }
    if (claim.status !== 'claimed') {
      this.giveBackUnclaimed(s)
      if (claim.status === 'done') return done(claim)
      if (claim.status === 'busy') return BUSY
      // Not done when read, not lockable as not done just after: settled meanwhile, or purged.
      const row = (await this.db('read', () => this.driver.query(this.dialect.read, [key]))).rows[0]
      if (isDone(row)) return done(row)
      throw vanished(key)
    }

    const attempt = claim.attempts + 1
    try {
      await this.runWork(key, s.tx, attempt, work)
    } catch (err) {
      await this.rollBackSession(s)
      await this.countFailedAttempt(key)
      throw err
    }
    const finishing = { fresh: claim.fresh, key, tx: claim.tx, attempt, memo: memo ?? null, claimedAt }
    try {
      script.readFinish(await s.script(...script.finish(finishing, Date.now())))
    } catch (err) {
      await this.rollBackSession(s)
      if (!script.isLockLost(err)) throw storeFailed('done-marker', err)
      // A fresh row is done from its insert: the handler's own COMMIT made it permanent with its
      // writes. Undone, so that the next attempt runs the handler, as on a row that was there.
      if (claim.fresh && script.unclaim) await this.db('done-marker', () => this.driver.query(...script.unclaim!(finishing)))
      throw storeFailed('done-marker', err, LOCK_LOST)
    }
    s.release()
    this.purgeWhenDue()
    return completed(claim.watched, claim.note)
  }

  /**
   * Gives back a session whose claim wrote nothing (done, busy, raced), not waiting for the
   * ROLLBACK of a transaction the claim left open (`openAfter`): the driver parks the connection
   * for the next claim to roll back in its own round trip, or rolls it back here without waiting.
   */
  private giveBackUnclaimed(s: SqlSession<Tx>): void {
    if (!this.dialect.script.openAfter) s.release()
    else if (s.park) s.park()
    else void this.rollBackSession(s)
  }

  /**
   * Gives a session back after a ROLLBACK: a connection whose ROLLBACK failed is destroyed
   * instead of pooled, as it may still hold locks. The returned promise is awaited only where the
   * answer must wait for it: pg queues later queries behind the ROLLBACK anyway.
   */
  private rollBackSession(s: SqlSession<Tx>): Promise<void> {
    return s.script('ROLLBACK', []).then(
      () => s.release(),
      (err: unknown) => s.release(err),
    )
  }

  /** PostgreSQL text cannot hold NUL: refused before anything runs, rather than failing after the work. */
  private checkText(field: string, value: string): void {
    if (typeof value !== 'string') throw new ParamError(field, `must be a string; got ${typeof value}`)
    if (this.dialect.name === 'postgres' && value.includes('\0')) throw new ParamError(field, 'cannot hold NUL (U+0000): PostgreSQL text cannot store it')
  }

  /** The shop's work, given a `ctx.tx` that refuses every call once the work ended (guard.ts). */
  private async runWork(key: string, tx: Tx, attempt: number, work: (tx: Tx, attempt: number) => Promise<void>): Promise<void> {
    const handle = guardTx(tx, key)
    try {
      await work(handle.tx, attempt)
    } finally {
      handle.end()
    }
  }

  /**
   * Where `key` stands (CrossCheck): read, then, unless done, in a transaction: create the row
   * when missing (a settlement inserting it meanwhile makes this busy, without waiting), lock it
   * NOWAIT, and roll back, or commit with `note` kept on the not-done row. Counts no attempt.
   */
  async peek(key: string, note?: string): Promise<PeekResult> {
    checkSqlKey(key)
    this.checkText('key', key)
    if (note !== undefined) this.checkText('note', note)
    await this.ready()
    const seen = (await this.db('read', () => this.driver.query(this.dialect.read, [key]))).rows[0]
    if (isDone(seen)) return peekResult(seen!)
    const t = await this.db('begin', () => this.driver.begin())
    if (!seen) {
      // A fresh settlement's row is not seen until it commits: only its insert shows it.
      try {
        await t.query(this.dialect.insertIfAbsent, [key, Date.now()])
      } catch (err) {
        await rollback(t)
        if (this.dialect.isLockBusy(err)) return { status: 'busy', watched: false }
        throw storeFailed('insert', err)
      }
    }
    const marker = await this.lockMarker(t, key)
    if (marker === 'busy') return { status: 'busy', watched: isTrue(seen?.watched) }
    if (!marker || isDone(marker) || note === undefined) {
      await rollback(t)
      return marker ? peekResult(marker) : { status: 'open', watched: false }
    }
    try {
      await t.query(this.dialect.keepNote, [note, Date.now(), key])
    } catch (err) {
      await rollback(t)
      throw storeFailed('note', err)
    }
    await this.db('commit', () => t.commit())
    return peekResult(marker)
  }

  /** `peek` without a note: a running settlement is `busy`. */
  async status(key: string): Promise<'done' | 'busy' | 'open'> {
    return (await this.peek(key)).status
  }

  /** Locks the marker row in `t` without waiting: the row (none if missing), or 'busy'. Rolls `t` back when it fails. */
  private async lockMarker(t: SqlTransaction<Tx>, key: string): Promise<SqlRow | undefined | 'busy'> {
    try {
      return (await t.query(this.dialect.lock, [key])).rows[0]
    } catch (err) {
      await rollback(t)
      if (this.dialect.isLockBusy(err)) return 'busy'
      throw storeFailed('lock', err)
    }
  }

  async watchUnsettled(record: UnsettledRecord): Promise<void> {
    const copy = checkUnsettledRecord(this.name, record)
    checkSqlKey(copy.key)
    await this.ready()
    // The mark first: a record is never there without it, so a settlement answering watched: false
    // means nothing to remove. The mark waits for a settlement holding the row, which then reads it.
    await this.db('watchUnsettled', () => this.driver.query(this.dialect.mark, [copy.key, Date.now()]))
    await this.db('watchUnsettled', () => this.driver.query(this.dialect.ledger.watch, [copy.key, copy.deadline, encodeUnsettled(copy)]))
  }

  /** Batched per event-loop turn (TurnBatch): resolves when the DELETE carrying this key answered. */
  async resolveUnsettled(key: string): Promise<void> {
    checkLedgerKey(this.name, key)
    await this.ready()
    await this.removals.add(key)
  }

  async listUnsettled(limit?: number): Promise<UnsettledRecord[]> {
    const n = checkLimit(this.name, limit)
    await this.ready()
    const { rows } = await this.db('listUnsettled', () => this.driver.query(this.dialect.ledger.list, [n]))
    return rows.map(toRecord)
  }

  async takeDueUnsettled(now: number, limit: number, leaseMs: number): Promise<UnsettledRecord[]> {
    checkTake(this.name, now, leaseMs)
    const n = checkLimit(this.name, limit)
    await this.ready()
    const t = await this.db('begin', () => this.driver.begin())
    let due: UnsettledRecord[]
    try {
      // SKIP LOCKED: sweeps on other instances take other records instead of waiting for these.
      const { rows } = await t.query(this.dialect.ledger.takeDue, [now, n])
      due = rows.map(toRecord)
      if (due.length > 0) await t.query(this.dialect.ledger.moveDeadlines(due.length), [now + leaseMs, ...due.map((r) => r.key)])
    } catch (err) {
      await rollback(t)
      throw storeFailed('takeDueUnsettled', err)
    }
    await this.db('commit', () => t.commit())
    return due
  }

  /**
   * Deletes markers last touched more than `retentionMs` ago, in batches, and resolves with how
   * many it deleted. Runs by itself every `purgeEveryMs`; call it from your own scheduler when
   * that is `false`. Concurrent calls share one run.
   */
  purge(): Promise<number> {
    this.purging ??= this.purgeAll().finally(() => { this.purging = undefined })
    return this.purging
  }

  private async purgeAll(): Promise<number> {
    await this.ready()
    const cutoff = Date.now() - this.retentionMs
    let deleted = 0
    for (;;) {
      const { rows } = await this.db('purge', () => this.driver.query(this.dialect.purgeCandidates, [cutoff, PURGE_BATCH]))
      if (rows.length === 0) return deleted
      const keys = rows.map((row) => row.settle_key)
      const { affected } = await this.db('purge', () => this.driver.query(this.dialect.purge(keys.length), [cutoff, ...keys]))
      deleted += affected
      if (rows.length < PURGE_BATCH) return deleted
    }
  }

  /** A lazy purge: at most once per `purgeEveryMs`, after a settlement, never delaying one. A failure waits for the next interval. */
  private purgeWhenDue(): void {
    if (this.purgeEveryMs === false || Date.now() - this.lastPurge < this.purgeEveryMs) return
    this.lastPurge = Date.now()
    this.purge().catch(() => {})
  }

  /**
   * The attempt that failed still counts, so `onRetryBudgetLow` sees handlers that keep throwing:
   * one statement, which creates the row when the rollback took it away (a fresh claim's).
   */
  private async countFailedAttempt(key: string): Promise<void> {
    // Busy (another attempt holds the row and counts itself) or the database is down: the count is advisory.
    await this.driver.query(this.dialect.countAttempt, [key, Date.now()]).catch(() => {})
  }

  /** Creates the table on first use (when `createTable`); a failure is retried by the next settlement. */
  private ready(): Promise<void> {
    if (!this.createTable) return Promise.resolve()
    this.schemaReady ??= this.createSchema().catch((err: unknown) => {
      this.schemaReady = undefined
      throw err
    })
    return this.schemaReady
  }

  private async createSchema(): Promise<void> {
    if (await this.tableExists()) return
    for (let attempt = 1; ; attempt++) {
      try {
        for (const statement of this.dialect.ddl) await this.driver.query(statement, [])
        if (!(await this.tableExists())) await this.upgradeSchema()
        return
      } catch (err) {
        // Instances starting at once race to create the tables: IF NOT EXISTS does not stop
        // PostgreSQL's catalog from refusing the loser, whose next pass finds them there.
        if (await this.tableExists()) return
        if (attempt < 3) {
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt))
          continue
        }
        throw new GuanaitongError(`could not create the settlement table ${this.table}: ${causeMessage(err)}. ` +
          `Grant CREATE, or run the DDL from ${this.dialect.exports.schema} in a migration and pass createTable: false`,
        'STORE_FAILED', { cause: err })
      }
    }
  }

  /**
   * Brings tables created by 0.2 to this version's shape (dialect.upgrade: the memo column; on
   * MySQL, VARBINARY keys). Each statement runs even when one before it failed (a column added by
   * an earlier, interrupted run); the shape is what counts.
   */
  private async upgradeSchema(): Promise<void> {
    let failure: unknown
    for (const statement of this.dialect.upgrade) await this.driver.query(statement, []).catch((err: unknown) => { failure ??= err })
    if (!(await this.tableExists())) throw failure ?? new GuanaitongError(`${this.table} is still not in this version's shape after the upgrade`, 'STORE_FAILED')
  }

  private async tableExists(): Promise<boolean> {
    try {
      return this.dialect.probed(await this.driver.query(this.dialect.probe, []))
    } catch {
      return false
    }
  }

  private async db<T>(step: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      throw storeFailed(step, err)
    }
  }
}

function toRecord(row: SqlRow): UnsettledRecord {
  return decodeUnsettled(String(row.record), Number(row.deadline))
}

/** A `done` answer: the memo stored with the done-marker (none when it was written without one) and the key's mark. */
function done(row: SqlRow): TransactionalResult {
  const result: TransactionalResult = { status: 'done', watched: isTrue(row.watched) }
  if (row.memo !== null && row.memo !== undefined) result.memo = String(row.memo)
  return result
}

/** A `completed` answer: the key's mark, read under the lock (a mark waits for it), and the note a peek left, if any. */
function completed(watched: boolean, note: unknown): TransactionalResult {
  const result: TransactionalResult = { status: 'completed', watched }
  if (note !== null && note !== undefined) result.note = String(note)
  return result
}

function vanished(key: string): GuanaitongError {
  return new GuanaitongError(`settlement row for ${key} vanished before it was locked (purged meanwhile?); a retry creates it again`, 'STORE_FAILED')
}

function peekResult(row: SqlRow): PeekResult {
  if (!isDone(row)) return { status: 'open', watched: isTrue(row.watched) }
  const { memo, watched } = done(row)
  return memo === undefined ? { status: 'done', watched: watched! } : { status: 'done', memo, watched: watched! }
}

function isDone(row: SqlRow | undefined): boolean {
  return row !== undefined && row.done_at !== null && row.done_at !== undefined
}

function checkSqlKey(key: string): void {
  checkKey(key)
  // Columns count code points; a string no longer in UTF-16 units needs no counting.
  if (key.length > MAX_SQL_KEY_LENGTH && [...key].length > MAX_SQL_KEY_LENGTH) throw new ParamError('key', `must be at most ${MAX_SQL_KEY_LENGTH} characters for a SQL store; got ${[...key].length}`)
}

/** A ROLLBACK whose failure changes nothing: the driver destroys the connection, and the database rolls back with it. */
async function rollback<Tx>(t: SqlTransaction<Tx>): Promise<void> {
  await t.rollback().catch(() => {})
}

/**
 * A failed step as STORE_FAILED, saying which step and why (`why`, else what was thrown). The
 * package's other errors (a ParamError from a driver) keep their code; a STORE_FAILED of a driver
 * (a COMMIT answered ROLLBACK) is said with its step, like the database's own errors.
 */
function storeFailed(step: string, err: unknown, why = causeMessage(err)): GuanaitongError {
  if (err instanceof GuanaitongError && err.code !== 'STORE_FAILED') return err
  return new GuanaitongError(`SQL store ${step} failed: ${why}`, 'STORE_FAILED', { cause: err })
}
