import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { MysqlStore } from '../../src/stores/mysql'
import { PostgresStore } from '../../src/stores/postgres'
import { mysqlDriver, pgDriver } from '../../src/stores/sql/drivers'
import type { SqlDriver, TransactionalStore } from '../../src/types'

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

/** A table name no other run uses: a purge in one suite must not delete another's markers. */
export function uniqueTable(label: string): string {
  return `gat_${label}_${randomBytes(4).toString('hex')}`
}

export function pgPool(max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max })
  // An idle client the server dropped (a restart) emits 'error' on the pool; the next checkout reconnects.
  pool.on('error', () => {})
  return pool
}

export function mysqlPool(max = 10): mysql.Pool {
  return mysql.createPool({ uri: MYSQL_URL, connectionLimit: max })
}

/** One row of the shop's table: the payment it was written for, and by which channel (when told). */
export interface ShopRow {
  id: string
  source: string | null
}

/** The shop's own table, where `onPaid` writes one row per payment through `ctx.tx`. */
export interface ShopTable {
  name: string
  write(tx: unknown, id: string, source?: string): Promise<unknown>
  count(id: string): Promise<number>
  /** Every row, for the tallies of a whole run. */
  rows(): Promise<ShopRow[]>
  drop(): Promise<void>
}

/** The shop table on `pool`; `create: false` for a table another process made. */
export async function pgShopTable(pool: pg.Pool, name = uniqueTable('shop'), create = true): Promise<ShopTable> {
  if (create) await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, source VARCHAR(16), at TIMESTAMPTZ NOT NULL DEFAULT now())`)
  return {
    name,
    write: (tx, id, source) => (tx as pg.PoolClient).query(`INSERT INTO ${name} (id, source) VALUES ($1, $2)`, [id, source ?? null]),
    count: async (id) => (await pool.query(`SELECT count(*)::int AS n FROM ${name} WHERE id = $1`, [id])).rows[0].n,
    rows: async () => (await pool.query<ShopRow>(`SELECT id, source FROM ${name}`)).rows,
    drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
  }
}

export async function mysqlShopTable(pool: mysql.Pool, name = uniqueTable('shop'), create = true): Promise<ShopTable> {
  if (create) await pool.query(`CREATE TABLE ${name} (id VARCHAR(191) NOT NULL, source VARCHAR(16) NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB`)
  return {
    name,
    write: (tx, id, source) => (tx as mysql.PoolConnection).query(`INSERT INTO ${name} (id, source) VALUES (?, ?)`, [id, source ?? null]),
    count: async (id) => Number(((await pool.query(`SELECT count(*) AS n FROM ${name} WHERE id = ?`, [id]))[0] as Array<{ n: number }>)[0].n),
    rows: async () => (await pool.query(`SELECT id, source FROM ${name}`))[0] as ShopRow[],
    drop: async () => { await pool.query(`DROP TABLE IF EXISTS ${name}`) },
  }
}

export const pgKill = (pool: pg.Pool) => (tx: unknown) =>
  pool.query('SELECT pg_terminate_backend($1)', [(tx as pg.PoolClient & { processID: number }).processID])

export const mysqlKill = (pool: mysql.Pool) => (tx: unknown) =>
  pool.query(`KILL ${Number((tx as mysql.PoolConnection).threadId)}`)

/** Which database a SQL store runs on. */
export type SqlKind = 'postgres' | 'mysql'
export const SQL_KINDS: readonly SqlKind[] = ['postgres', 'mysql']

/** One database and a pool to it: the store, the shop table and the statements a test reads it with. */
export interface SqlTarget {
  kind: SqlKind
  /** A store on the pool; on `driver` instead when given (a wrapper of `driver()`). */
  store(table: string, driver?: SqlDriver<unknown>): TransactionalStore
  /** The driver the store builds from the pool. */
  driver(): SqlDriver<unknown>
  shopTable(name?: string, create?: boolean): Promise<ShopTable>
  /** How many of these settlement keys carry a done-marker in the store's table. */
  doneMarkers(table: string, keys: readonly string[]): Promise<number>
  dropTable(table: string): Promise<void>
  end(): Promise<void>
}

/** What both pools do alike. */
function poolChores(pool: { query(sql: string): Promise<unknown>; end(): Promise<void> }): Pick<SqlTarget, 'dropTable' | 'end'> {
  return {
    dropTable: async (table) => { await pool.query(`DROP TABLE IF EXISTS ${table}`) },
    end: () => pool.end(),
  }
}

export function sqlTarget(kind: SqlKind, max = 10): SqlTarget {
  if (kind === 'postgres') {
    const pool = pgPool(max)
    return {
      kind,
      ...poolChores(pool),
      store: (table, driver) => (driver ? new PostgresStore({ driver, table }) : new PostgresStore({ pool, table })),
      driver: () => pgDriver(pool) as SqlDriver<unknown>,
      shopTable: (name, create) => pgShopTable(pool, name, create),
      doneMarkers: async (table, keys) => (await pool.query(
        `SELECT count(*)::int AS n FROM ${table} WHERE done_at IS NOT NULL AND settle_key = ANY($1)`, [keys])).rows[0].n,
    }
  }
  const pool = mysqlPool(max)
  return {
    kind,
    ...poolChores(pool),
    store: (table, driver) => (driver ? new MysqlStore({ driver, table }) : new MysqlStore({ pool, table })),
    driver: () => mysqlDriver(pool) as SqlDriver<unknown>,
    shopTable: (name, create) => mysqlShopTable(pool, name, create),
    doneMarkers: async (table, keys) => Number(((await pool.query(
      `SELECT count(*) AS n FROM ${table} WHERE done_at IS NOT NULL AND settle_key IN (?)`, [keys]))[0] as Array<{ n: number }>)[0].n),
  }
}
