/**
 * `express-guanaitong unsettled`: prints the pays a RedisStore's unsettled ledger holds, the ones
 * that may have charged an employee and that no settlement has confirmed, soonest deadline first.
 */
import { DEFAULTS } from '../defaults'
import { errorMessage } from '../errors'
import { printable } from '../printable'
import { RedisStore } from '../stores/redis'
import type { RedisClientLike, UnsettledRecord } from '../types'
import { EXIT, helpText, intFlag, parseCommand, requireFlag, stringFlag, UsageError, type CommandSpec, type Io } from './args'

export const unsettledSpec: CommandSpec = {
  name: 'unsettled',
  summary: 'list pays that may have charged an employee and are not settled yet (RedisStore)',
  usage: 'unsettled --redis <url> [--prefix gat:] [--limit n] [--json]',
  flags: {
    redis: { type: 'string', value: '<url>', description: 'the Redis of your RedisStore, e.g. redis://127.0.0.1:6379', env: 'GAT_REDIS_URL' },
    prefix: { type: 'string', value: '<prefix>', description: 'the prefix your RedisStore was made with (default gat:)' },
    limit: { type: 'string', value: '<n>', description: `the most records printed, soonest deadline first (default ${DEFAULTS.unsettledListLimit})` },
    json: { type: 'boolean', description: 'one JSON object per line (the record as onUnsettled gets it) instead of a table' },
  },
  notes: [
    'A pay is listed from its ambiguous answer (a time-out) or its answer settled: false until a',
    'settlement of the order removes it; onUnsettled is called for it at its deadline. Times are UTC.',
    'Exit codes: 0 listed (also when none), 1 Redis answered an error, 2 bad arguments,',
    '3 Redis could not be reached.',
  ],
  examples: [
    'express-guanaitong unsettled --redis redis://127.0.0.1:6379',
    'express-guanaitong unsettled --redis redis://:password@redis.internal:6379/2 --prefix shop1:gat: --json',
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

interface Connection {
  client: RedisClientLike
  close(): void
}

/** An ioredis client that fails at once rather than retrying: a command line waits for nobody. */
async function connect(url: string): Promise<Connection> {
  let Redis: typeof import('ioredis').Redis
  try {
    ({ Redis } = await import('ioredis'))
  } catch {
    throw new UsageError('the unsettled command needs the ioredis package: npm install ioredis')
  }
  const client = new Redis(url, {
    lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 3000, commandTimeout: 10_000,
    retryStrategy: () => null,
  })
  client.on('error', () => undefined) // the failed connect() below says it
  await client.connect()
  return { client, close: () => client.disconnect() }
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

/** A cell escaped as log lines are (src/printable.ts): a stored order number must not steer the terminal or reverse the text. */
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
  const url = requireFlag(unsettledSpec, parsed, 'redis', io)
  if (!/^rediss?:\/\//.test(url)) throw new UsageError(`--redis must be a redis:// or rediss:// URL; got ${JSON.stringify(shown(url))}`)
  const prefix = stringFlag(unsettledSpec, parsed, 'prefix', io) ?? 'gat:'
  if (/[{}]/.test(prefix)) throw new UsageError(`--prefix has no { or } (RedisStore adds its hash tags itself); got ${JSON.stringify(prefix)}`)
  const limit = intFlag('limit', stringFlag(unsettledSpec, parsed, 'limit', io), DEFAULTS.unsettledListLimit, 1, 1_000_000)
  let connection: Connection
  try {
    connection = await connect(url)
  } catch (err) {
    if (err instanceof UsageError) throw err
    io.err(`error: cannot reach Redis at ${shown(url)}: ${errorMessage(err)}`)
    return EXIT.UNREACHABLE
  }
  try {
    const records = await new RedisStore({ client: connection.client, prefix }).listUnsettled(limit)
    if (parsed.values.json) {
      for (const record of records) io.out(JSON.stringify(record))
      return EXIT.OK
    }
    const now = Date.now()
    if (records.length === 0) {
      io.out(`no unsettled pays under prefix ${JSON.stringify(prefix)}`)
      return EXIT.OK
    }
    for (const line of table(records, now)) io.out(line)
    const due = records.filter((r) => r.deadline <= now).length
    io.out(`${records.length} unsettled pay${records.length === 1 ? '' : 's'}${records.length === limit ? ` (the first ${limit})` : ''}, ${due} past the deadline`)
    return EXIT.OK
  } catch (err) {
    io.err(`error: Redis answered: ${errorMessage(err)}`)
    return EXIT.FAILED
  } finally {
    connection.close()
  }
}
