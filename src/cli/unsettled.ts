/**
 * `express-guanaitong unsettled`: prints the pays a store's unsettled ledger holds (RedisStore,
 * PostgresStore or MysqlStore), the ones that may have charged an employee and that no settlement
 * has confirmed, soonest deadline first.
 */
import { DEFAULTS } from '../kernel/defaults'
import { causeMessage, ConfigError, errorMessage } from '../kernel/errors'
import { printable } from '../kernel/printable'
import { MysqlStore } from '../stores/mysql'
import { PostgresStore } from '../stores/postgres'
import { RedisStore } from '../stores/redis'
import type { UnsettledRecord } from '../kernel/types'
import { EXIT, helpText, intFlag, parseCommand, stringFlag, UsageError, type CommandSpec, type Io } from './args'

export const unsettledSpec: CommandSpec = {
  name: 'unsettled',
  summary: 'list pays that may have charged an employee and are not settled yet (RedisStore, PostgresStore, MysqlStore)',
  usage: 'unsettled (--redis <url> [--prefix gat:] | --database-url <url> [--table gat_settlements]) [--limit n] [--json]',
  flags: {
    redis: { type: 'string', value: '<url>', description: 'the Redis of your RedisStore, e.g. redis://127.0.0.1:6379', env: 'GAT_REDIS_URL' },
    prefix: { type: 'string', value: '<prefix>', description: 'the prefix your RedisStore was made with (default gat:)' },
    'database-url': {
      type: 'string', value: '<url>', env: 'GAT_DATABASE_URL',
      description: 'the database of your PostgresStore (postgres://…) or MysqlStore (mysql://…); read only, nothing is created',
    },
    table: { type: 'string', value: '<name>', description: 'the table your SQL store was made with (default gat_settlements)' },
    limit: { type: 'string', value: '<n>', description: `the most records printed, soonest deadline first (default ${DEFAULTS.unsettledListLimit})` },
    json: { type: 'boolean', description: 'one JSON object per line (the record as onUnsettled gets it) instead of a table' },
  },
  notes: [
    'A pay is listed from its ambiguous answer (a time-out) or its answer settled: false until a',
    'settlement of the order removes it; onUnsettled is called for it at its deadline. Times are UTC.',
    'Exit codes: 0 listed (also when none), 1 the store answered an error, 2 bad arguments,',
    '3 the store could not be reached.',
  ],
  examples: [
    'express-guanaitong unsettled --redis redis://127.0.0.1:6379',
    'express-guanaitong unsettled --redis redis://:password@redis.internal:6379/2 --prefix shop1:gat: --json',
    'express-guanaitong unsettled --database-url postgres://shop@db.internal:5432/shop --table payments.gat_settlements',
    'express-guanaitong unsettled --database-url mysql://shop@db.internal:3306/shop',
  ],
}

/** The URL without its password, for messages. */
function shown(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(the given URL)'
  }
}

/** Where the ledger is read: the store, and how to let go of its connection. */
interface Ledger {
  store: { listUnsettled(limit: number): Promise<UnsettledRecord[]> }
  close(): Promise<void>
}

/** Which store a URL names, the package its client needs, and how to open it. */
interface Source {
  /** For messages: "cannot reach PostgreSQL at …". */
  name: string
  flag: 'redis' | 'database-url'
  open(url: string, where: string): Promise<Ledger>
}

/** Imports an optional peer dependency, or says how to install it. */
async function peer<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch {
    throw new UsageError(`the unsettled command needs the ${name} package for this URL: npm install ${name}`)
  }
}

// Each client fails at once rather than retrying (a command line waits for nobody), connects
// before the store is made (so an unreachable store exits 3), and creates, purges and writes nothing.
const REDIS: Source = {
  name: 'Redis',
  flag: 'redis',
  async open(url, prefix) {
    const { Redis } = await peer('ioredis', () => import('ioredis'))
    const client = new Redis(url, {
      lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 3000, commandTimeout: 10_000,
      retryStrategy: () => null,
    })
    client.on('error', () => undefined) // the failed connect() below says it
    await client.connect()
    return { store: new RedisStore({ client, prefix }), close: async () => client.disconnect() }
  },
}

/** A SQL store on `pool`, connected once; the pool is ended if either fails. A bad --table is a usage error. */
async function openSql(pool: { end(): Promise<void> }, connect: () => Promise<void>, make: () => Ledger['store']): Promise<Ledger> {
  try {
    const store = make()
    await connect()
    return { store, close: () => pool.end() }
  } catch (err) {
    await pool.end()
    throw err instanceof ConfigError ? new UsageError(`--table: ${causeMessage(err)}`) : err
  }
}

const POSTGRES: Source = {
  name: 'PostgreSQL',
  flag: 'database-url',
  async open(url, table) {
    const { default: pg } = await peer('pg', () => import('pg'))
    const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 3000 })
    pool.on('error', () => undefined) // an idle connection dropping is told by the next query
    return openSql(pool, async () => (await pool.connect()).release(),
      () => new PostgresStore({ pool, table, createTable: false, purgeEveryMs: false }))
  },
}

const MYSQL: Source = {
  name: 'MySQL',
  flag: 'database-url',
  async open(url, table) {
    const mysql = await peer('mysql2', () => import('mysql2/promise'))
    const pool = mysql.createPool({ uri: url, connectionLimit: 1, connectTimeout: 3000 })
    return openSql(pool, async () => (await pool.getConnection()).release(),
      () => new MysqlStore({ pool, table, createTable: false, purgeEveryMs: false }))
  },
}

/** The store to read, from --redis or --database-url (or their environment variables), and its prefix or table. */
function chooseSource(parsed: ReturnType<typeof parseCommand>, io: Io): { source: Source; url: string; where: string } {
  const given = (['redis', 'database-url'] as const).filter((flag) => typeof parsed.values[flag] === 'string')
  if (given.length > 1) throw new UsageError('give --redis or --database-url, not both')
  const flag = given[0] ?? (['redis', 'database-url'] as const).find((f) => stringFlag(unsettledSpec, parsed, f, io) !== undefined)
  if (flag === undefined) throw new UsageError('--redis or --database-url is required (or set GAT_REDIS_URL or GAT_DATABASE_URL)')
  const url = stringFlag(unsettledSpec, parsed, flag, io)!
  const misplaced = flag === 'redis' ? 'table' : 'prefix'
  if (typeof parsed.values[misplaced] === 'string') {
    throw new UsageError(`--${misplaced} goes with ${flag === 'redis' ? '--database-url' : '--redis'}, not --${flag}`)
  }
  if (flag === 'redis') {
    if (!/^rediss?:\/\//.test(url)) throw new UsageError(`--redis must be a redis:// or rediss:// URL; got ${JSON.stringify(shown(url))}`)
    const prefix = stringFlag(unsettledSpec, parsed, 'prefix', io) ?? 'gat:'
    if (/[{}]/.test(prefix)) throw new UsageError(`--prefix has no { or } (RedisStore adds its hash tags itself); got ${JSON.stringify(prefix)}`)
    return { source: REDIS, url, where: prefix }
  }
  const source = /^postgres(ql)?:\/\//.test(url) ? POSTGRES : /^mysql:\/\//.test(url) ? MYSQL : undefined
  if (!source) throw new UsageError(`--database-url must be a postgres:// or mysql:// URL; got ${JSON.stringify(shown(url))}`)
  return { source, url, where: stringFlag(unsettledSpec, parsed, 'table', io) ?? 'gat_settlements' }
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')
}

/** "due 2h 5m ago" / "in 3h 12m". */
function dueIn(deadline: number, now: number): string {
  const minutes = Math.round(Math.abs(deadline - now) / 60_000)
  const span = minutes >= 60 ? `${Math.floor(minutes / 60)}h ${minutes % 60}m` : `${minutes}m`
  return deadline <= now ? `due ${span} ago` : `in ${span}`
}

/** A cell escaped as log lines are (src/kernel/printable.ts): a stored order number must not steer the terminal or reverse the text. */
const cell = (text: string) => printable(text, Infinity)

function table(records: UnsettledRecord[], now: number): string[] {
  const header = ['DEADLINE', 'WHEN', 'OUTER_TRADE_NO', 'AMOUNT', 'TRADE_NO', 'REASON', 'BUYER', 'SINCE']
  const rows = records.map((r) => [
    when(r.deadline), dueIn(r.deadline, now), r.outerTradeNo, r.totalAmount, r.tradeNo ?? '-', r.reason, r.buyerOpenId, when(r.since),
  ].map(cell))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd())
}

export async function runUnsettled(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCommand(unsettledSpec, argv)
  if (parsed.help) {
    io.out(helpText(unsettledSpec))
    return EXIT.OK
  }
  const { source, url, where } = chooseSource(parsed, io)
  const limit = intFlag('limit', stringFlag(unsettledSpec, parsed, 'limit', io), DEFAULTS.unsettledListLimit, 1, 1_000_000)
  let ledger: Ledger
  try {
    ledger = await source.open(url, where)
  } catch (err) {
    if (err instanceof UsageError) throw err
    io.err(`error: cannot reach ${source.name} at ${shown(url)}: ${errorMessage(err)}`)
    return EXIT.UNREACHABLE
  }
  try {
    const records = await ledger.store.listUnsettled(limit)
    if (parsed.values.json) {
      for (const record of records) io.out(JSON.stringify(record))
      return EXIT.OK
    }
    const now = Date.now()
    if (records.length === 0) {
      io.out(`no unsettled pays ${source === REDIS ? 'under prefix' : 'in the ledger of table'} ${JSON.stringify(where)}`)
      return EXIT.OK
    }
    for (const line of table(records, now)) io.out(line)
    const due = records.filter((r) => r.deadline <= now).length
    io.out(`${records.length} unsettled pay${records.length === 1 ? '' : 's'}${records.length === limit ? ` (the first ${limit})` : ''}, ${due} past the deadline`)
    return EXIT.OK
  } catch (err) {
    io.err(`error: ${source.name} answered: ${errorMessage(err)}`)
    return EXIT.FAILED
  } finally {
    await ledger.close()
  }
}
