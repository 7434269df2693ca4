import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { Cluster, Redis } from 'ioredis'
import { createClient, type createCluster } from 'redis'
import { createSettlement, type SettleOutcome } from '../../src/core/settle/settle'
import type { Notification, NotifyStore } from '../../src/kernel/types'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** An ioredis client: one server or a cluster. */
export type IoredisClient = Redis | Cluster
/** A node-redis client: one server or a cluster. */
export type NodeRedisClient = ReturnType<typeof createClient> | ReturnType<typeof createCluster>

/** Where a shared Redis suite runs; it makes the suite's connections (fail-fast, connected). */
export interface RedisTarget {
  /** Shown in the suite's title. */
  name: string
  /** A new ioredis client; the suite disconnects it. */
  ioredis(): Promise<IoredisClient>
  /** A new node-redis client; the suite destroys it. */
  nodeRedis(): Promise<NodeRedisClient>
}

/** The machine's Redis (REDIS_URL). */
export const SINGLE_REDIS: RedisTarget = {
  name: 'real Redis',
  async ioredis() {
    const c = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 2000 })
    await c.connect()
    return c
  },
  async nodeRedis() {
    const client = createClient({ url: REDIS_URL, disableOfflineQueue: true })
    client.on('error', () => {})
    await client.connect()
    return client
  },
}

/** A key prefix no other run (or helper sharing this Redis) uses. */
export function uniquePrefix(label: string): string {
  return `gat-test:${label}:${Date.now().toString(36)}-${randomBytes(4).toString('hex')}:`
}

/** The servers to SCAN: the primaries of a cluster, or the one server. */
function scanned(redis: IoredisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis]
}

/** Deletes every key under `prefix`, one by one (in a cluster they live in different slots). */
export async function deleteKeys(redis: IoredisClient, prefix: string): Promise<number> {
  const deleted = await Promise.all((await keysUnder(redis, prefix)).map((key) => redis.del(key)))
  return deleted.reduce((sum, n) => sum + n, 0)
}

/** Every key under `prefix`. */
export async function keysUnder(redis: IoredisClient, prefix: string): Promise<string[]> {
  const found: string[] = []
  for (const server of scanned(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000)
      cursor = next
      found.push(...keys)
    } while (cursor !== '0')
  }
  return found.sort()
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

/** A TCP port nothing listens on (it was free a moment ago). */
export async function unusedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** CRC16-XMODEM, as Redis Cluster uses for hash slots. */
function crc16(data: Buffer): number {
  let crc = 0
  for (const byte of data) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/** The Redis Cluster hash slot of a key, hash tags included (cluster-spec "Keys hash tags"). */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8')
  const open = bytes.indexOf('{')
  if (open !== -1) {
    const close = bytes.indexOf('}', open + 1)
    if (close !== -1 && close !== open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384
  }
  return crc16(bytes) % 16384
}

/**
 * The client as a store sees it, recording each command the store sends through it (the method
 * called, then its arguments flattened), on this client only: no other connection's traffic, as
 * MONITOR would show, can get in. The adapter awaits every command it sends, so each recorded
 * command is one round trip (a `pipeline` call records its commands when it is executed).
 */
export function spyOnCommands<C extends object>(client: C): { client: C; sent: string[][]; names: () => string[] } {
  const sent: string[][] = []
  const flat = (args: unknown[]): string[] => args.flatMap((a) => {
    if (Array.isArray(a)) return flat(a)
    if (a !== null && typeof a === 'object') return flat([...((a as { keys?: unknown[] }).keys ?? []), ...((a as { arguments?: unknown[] }).arguments ?? [])])
    return [String(a)]
  })
  const proxy = new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown
      if (typeof value !== 'function') return value
      if (prop === 'pipeline') {
        // ioredis: the commands chained on the pipeline go out together when it is executed.
        return () => {
          const queued: string[][] = []
          const pipe = (value as () => Record<string, (...args: unknown[]) => unknown>).call(target)
          const wrapped: Record<string, unknown> = new Proxy(pipe, {
            get(p, name) {
              const fn = Reflect.get(p, name, p) as unknown
              if (typeof fn !== 'function') return fn
              if (name === 'exec') return () => { sent.push(...queued); return (fn as () => unknown).call(p) }
              return (...args: unknown[]) => { queued.push([String(name), ...flat(args)]); (fn as (...a: unknown[]) => unknown).apply(p, args); return wrapped }
            },
          })
          return wrapped
        }
      }
      return (...args: unknown[]) => {
        sent.push([String(prop), ...flat(args)])
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { client: proxy, sent, names: () => sent.map((args) => args[0].toLowerCase()) }
}

/** Settles payment `i` (outer trade number `<label><i>`) through the settlement core on `store`, with a no-op onPaid. */
export function settlingOn(store: NotifyStore, label: string): (i: number) => Promise<SettleOutcome> {
  const settle = createSettlement({ onPaid: () => undefined, logger: { warn() {}, error() {} } })
  const payment = (i: number): Notification => ({
    appId: '20110698', outerTradeNo: `${label}${i}`, tradeNo: `T${i}`, buyerOpenId: 'b', totalAmount: '1.00', totalFen: 100, attach: '', timestamp: 0, raw: {},
  })
  return (i) => settle({ notification: payment(i), req: {} as never, source: 'notify', store })
}

/** A client's socket, as the write counter sees it. */
export type CountedSocket = { _write: (...args: unknown[]) => unknown; _writev: (...args: unknown[]) => unknown; writableCorked: number }

/**
 * Counts what `sockets` hand to the OS: one `_write` or `_writev` call per write syscall, however
 * many `write()` calls were corked into it. `restore()` removes the counters.
 */
export function countSocketWrites(sockets: CountedSocket[]): { count: () => number; restore: () => void } {
  let writes = 0
  for (const socket of sockets) {
    socket._write = function (this: CountedSocket, ...args: unknown[]) { writes++; return Object.getPrototypeOf(this)._write.apply(this, args) }
    socket._writev = function (this: CountedSocket, ...args: unknown[]) { writes++; return Object.getPrototypeOf(this)._writev.apply(this, args) }
  }
  return {
    count: () => writes,
    restore: () => {
      for (const socket of sockets) {
        delete (socket as Partial<CountedSocket>)._write
        delete (socket as Partial<CountedSocket>)._writev
      }
    },
  }
}
