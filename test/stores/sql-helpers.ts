/**
 * The two databases the SQL stores are tested on, described once: their pools, the shop's own
 * table `onPaid` writes to, and the server-side handles the tests need (kill a connection, list
 * tables). Every SQL test file iterates over `sqlTargets()`.
 */
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { MysqlStore, PostgresStore } from '../../src/stores'
import { mysqlDriver, pgDriver } from '../../src/stores/sql/drivers'
import type { SqlDriver, SqlStoreOptions, TransactionalStore } from '../../src/types'

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** A table name no other run uses: a purge in one suite must not delete another's markers. */
export function uniqueTable(label: string): string {
  return `gat_${label}_${randomBytes(4).toString('hex')}`
}

export function pgPool(max = 10, url = POSTGRES_URL): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max })
  // An idle client the server dropped (a restart) emits 'error' on the pool; the next checkout reconnects.
  pool.on('error', () => {})
  return pool
}

export function mysqlPool(max = 10, url = MYSQL_URL): mysql.Pool {
  return mysql.createPool({ uri: url, connectionLimit: max })
}

/** The shop's own table, where `onPaid` writes one row per payment through `ctx.tx`. */
export interface ShopTable {
  name: string
  write(tx: unknown, id: string): Promise<unknown>
  count(id: string): Promise<number>
  drop(): Promise<void>
}

/** A store over a pool of its own that has no 'error' listener, and a way to kill that pool's idle connections. */
export interface BareStore {
  store: TransactionalStore
  killIdle(): Promise<number>
  end(): Promise<void>
}

export interface SqlTarget {
  /** The store class's name. */
  name: 'PostgresStore' | 'MysqlStore'
  /** A store over the shared pool (or `url`'s, for an unreachable database), or over `options.driver`. */
  store(options: SqlStoreOptions & { table: string; driver?: SqlDriver<unknown> }, url?: string): TransactionalStore
  /** The package's own driver over the shared pool. */
  driver(): SqlDriver<unknown>
  shop(): Promise<ShopTable>
  /** Runs one statement through a handler's `tx`. */
  run(tx: unknown, sql: string): Promise<unknown>
  /** Kills the connection behind `tx` on the server, from another connection. */
  kill(tx: unknown): Promise<unknown>
  exists(table: string): Promise<boolean>
  /** Drops a store's table and its ledger table. */
  drop(table: string): Promise<unknown>
  bare(table: string): BareStore
  /** Where nothing listens. */
  unreachableUrl: string
  end(): Promise<void>
}

function postgresTarget(): SqlTarget {
  const pool = pgPool()
  const extra: pg.Pool[] = []
  return {
    name: 'PostgresStore',
    store: ({ driver, ...options }, url) => (driver
      ? new PostgresStore({ driver, ...options })
      : new PostgresStore({ pool: url ? remember(extra, pgPool(1, url)) : pool, ...options })),
    driver: () => pgDriver(pool) as SqlDriver<unknown>,
    async shop() {
      const name = uniqueTable('shop')
      await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      return {
        name,
        write: (tx, id) => (tx as pg.PoolClient).query(`INSERT INTO ${name} (id) VALUES ($1)`, [id]),
        count: async (id) => (await pool.query(`SELECT count(*)::int AS n FROM ${name} WHERE id = $1`, [id])).rows[0].n,
        drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
      }
    },
    run: (tx, sql) => (tx as pg.PoolClient).query(sql),
    kill: (tx) => pool.query('SELECT pg_terminate_backend($1)', [(tx as pg.PoolClient & { processID: number }).processID]),
    exists: async (table) => (await pool.query('SELECT to_regclass($1) AS t', [table])).rows[0].t !== null,
    drop: (table) => pool.query(`DROP TABLE IF EXISTS ${table}, ${table}_unsettled`),
    bare(table) {
      const name = `bare_${table}`
      const own = new pg.Pool({ connectionString: POSTGRES_URL, max: 3, application_name: name })
      return {
        store: new PostgresStore({ pool: own, table }),
        killIdle: async () => (await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'", [name])).rowCount ?? 0,
        end: () => own.end(),
      }
    },
    unreachableUrl: 'postgres://postgres@127.0.0.1:1/test',
    end: async () => { for (const p of [pool, ...extra]) await p.end() },
  }
}

function mysqlTarget(): SqlTarget {
  const pool = mysqlPool()
  const extra: mysql.Pool[] = []
  return {
    name: 'MysqlStore',
    store: ({ driver, ...options }, url) => (driver
      ? new MysqlStore({ driver, ...options })
      : new MysqlStore({ pool: url ? remember(extra, mysqlPool(1, url)) : pool, ...options })),
    driver: () => mysqlDriver(pool) as SqlDriver<unknown>,
    async shop() {
      const name = uniqueTable('shop')
      await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`)
      return {
        name,
        write: (tx, id) => (tx as mysql.PoolConnection).query(`INSERT INTO ${name} (id) VALUES (?)`, [id]),
        count: async (id) => Number(((await pool.query(`SELECT count(*) AS n FROM ${name} WHERE id = ?`, [id]))[0] as Array<{ n: number }>)[0].n),
        drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
      }
    },
    run: (tx, sql) => (tx as mysql.PoolConnection).query(sql),
    kill: (tx) => pool.query(`KILL ${Number((tx as mysql.PoolConnection).threadId)}`),
    exists: async (table) => ((await pool.query('SHOW TABLES LIKE ?', [table]))[0] as unknown[]).length > 0,
    drop: (table) => pool.query(`DROP TABLE IF EXISTS ${table}, ${table}_unsettled`),
    bare(table) {
      const own = mysqlPool(3)
      return {
        store: new MysqlStore({ pool: own, table }),
        killIdle: async () => {
          // mysql2 keeps no public list of idle connections.
          const idle = (own.pool as unknown as { _freeConnections: { toArray(): Array<{ threadId: number }> } })._freeConnections.toArray()
          for (const { threadId } of idle) await pool.query(`KILL ${Number(threadId)}`)
          return idle.length
        },
        end: () => own.end(),
      }
    },
    unreachableUrl: 'mysql://root@127.0.0.1:1/test',
    end: async () => { for (const p of [pool, ...extra]) await p.end() },
  }
}

function remember<T>(list: T[], item: T): T {
  list.push(item)
  return item
}

/** Both databases, each with pools of its own; call `end()` on each after the file's tests. */
export function sqlTargets(): SqlTarget[] {
  return [postgresTarget(), mysqlTarget()]
}

/**
 * A driver whose next `n` unlocked reads of a marker row find nothing: a settlement that read
 * just before another created the row, a race too narrow to hit on purpose.
 */
export function blindReads<Tx>(driver: SqlDriver<Tx>): SqlDriver<Tx> & { blind(n: number): void } {
  let blind = 0
  return {
    begin: () => driver.begin(),
    query: async (sql, params) => {
      if (blind > 0 && sql.startsWith('SELECT done_at, attempts FROM')) {
        blind--
        return { rows: [], affected: 0 }
      }
      return driver.query(sql, params)
    },
    blind: (n) => { blind = n },
  }
}

/** Settles `key` with a work that waits until `open()`; `inside` resolves once the work runs. */
export function heldSettlement(store: TransactionalStore<unknown>, key: string) {
  let open!: () => void
  let entered!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const result = store.settle(key, async () => {
    entered()
    await gate
  })
  return { result, inside, open }
}
