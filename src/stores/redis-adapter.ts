import { createHash } from 'node:crypto'
import { ConfigError, errorMessage, GuanaitongError } from '../kernel/errors'


/** A Lua script with its SHA1, so it can be run by EVALSHA. */
export class LuaScript {
  readonly sha: string
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }
}

/** What the stores need from a client: run a script, in one round trip once Redis has it cached. */
export interface RedisAdapter {
  /** Runs `script` with EVALSHA; on NOSCRIPT (first use, or after a SCRIPT FLUSH or failover) with EVAL. */
  evalScript(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown>
  /**
   * Runs `script` with EVAL (its source) in one command, whatever Redis has cached: for a command
   * that must take effect even when its reply is never read (EVALSHA would get NOSCRIPT, and the
   * EVAL fallback is only sent once that reply was read).
   */
  evalSource(script: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown>
  /**
   * Runs `WAIT replicas timeoutMs` on the connection that serves `key`'s slot, the one the
   * store's last script for that key went out on: WAIT counts the replicas that acknowledged
   * that connection's writes. Resolves with that count.
   */
  waitForReplicas(key: string, replicas: number, timeoutMs: number): Promise<unknown>
  /** Which client library was detected. */
  readonly kind: 'ioredis' | 'node-redis'
}

type Eval = (source: string, sha: string, keys: string[], args: string[]) => Promise<unknown>
type Wait = (key: string, replicas: string, timeoutMs: string) => Promise<unknown>
type Pipeline = { exists(key: string): Pipeline; wait(replicas: string, timeoutMs: string): Pipeline; exec(): Promise<Array<[Error | null, unknown]> | null> }

/**
 * Wraps an ioredis or node-redis client. Detection: node-redis has camel-case `evalSha(sha,
 * { keys, arguments })`; ioredis has lower-case `evalsha(sha, numKeys, ...keysAndArgs)`.
 */
export function redisAdapter(client: unknown, owner: string): RedisAdapter {
  const c = client as Record<string, unknown> | null | undefined
  if (c === null || (typeof c !== 'object' && typeof c !== 'function')) {
    throw new ConfigError(`${owner}: client is required: pass a connected ioredis client (new Redis(url)) or node-redis client (await createClient({ url }).connect())`)
  }
  let kind: RedisAdapter['kind']
  let evalSha: Eval
  let evalSource: Eval
  let wait: Wait
  if (typeof c.evalSha === 'function' && typeof c.eval === 'function') {
    kind = 'node-redis'
    const call = (method: 'evalSha' | 'eval') => (source: string, sha: string, keys: string[], args: string[]) =>
      (c[method] as (script: string, options: { keys: string[]; arguments: string[] }) => Promise<unknown>)
        .call(c, method === 'evalSha' ? sha : source, { keys, arguments: args })
    evalSha = call('evalSha')
    evalSource = call('eval')
    // A node-redis cluster routes sendCommand by its first argument, the key (v4 to v6).
    const send = c.sendCommand as (...args: unknown[]) => Promise<unknown>
    wait = typeof c.getSlotMaster === 'function'
      ? (key, replicas, timeoutMs) => send.call(c, key, false, ['WAIT', replicas, timeoutMs])
      : (_key, replicas, timeoutMs) => send.call(c, ['WAIT', replicas, timeoutMs])
  } else if (typeof c.evalsha === 'function' && typeof c.eval === 'function') {
    kind = 'ioredis'
    // An ioredis Cluster auto-pipelines by the slot of a command's FIRST argument: for EVALSHA that
    // is the script's SHA, not a key, so scripts on keys of different slots land in one pipeline,
    // which ioredis then refuses ("All keys in the pipeline should belong to the same slots
    // allocation group"): every store call under concurrency would fail (test/cluster/autopipelining.test.ts).
    if (c.isCluster === true && (c.options as { enableAutoPipelining?: unknown } | undefined)?.enableAutoPipelining === true) {
      throw new ConfigError(`${owner}: an ioredis Cluster with enableAutoPipelining sends scripts on different slots in one pipeline, ` +
        'which ioredis refuses: create the Cluster without enableAutoPipelining (a single-server client may keep it)')
    }
    const coalesce = turnWrites(c)
    const call = (method: 'evalsha' | 'eval') => (source: string, sha: string, keys: string[], args: string[]) => {
      coalesce()
      return (c[method] as (script: string, numKeys: number, ...rest: string[]) => Promise<unknown>)
        .call(c, method === 'evalsha' ? sha : source, keys.length, ...keys, ...args)
    }
    evalSha = call('evalsha')
    evalSource = call('eval')
    // WAIT names no key: in a pipeline behind a command on `key`, an ioredis Cluster sends it to
    // the node (and connection) serving that key's slot; a plain client has one connection anyway.
    wait = async (key, replicas, timeoutMs) => {
      const replies = await (c.pipeline as () => Pipeline).call(c).exists(key).wait(replicas, timeoutMs).exec()
      const failed = replies?.find(([err]) => err)
      if (failed) throw failed[0]
      return replies?.[1][1]
    }
  } else {
    throw new ConfigError(`${owner}: client is neither an ioredis nor a node-redis client (no evalsha/evalSha method): pass new Redis(url) from ioredis or a connected createClient() from redis`)
  }
  /** The client's own error, wrapped so the stores keep the package's error contract; the original is the cause. */
  const wrapped = async (command: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await command()
    } catch (err) {
      throw new GuanaitongError(`${owner}: Redis command failed: ${errorMessage(err)}`, 'REDIS_FAILED', { cause: err })
    }
  }
  return {
    kind,
    evalScript(script, keys, args) {
      const argv = args.map(String)
      return wrapped(async () => {
        try {
          return await evalSha(script.source, script.sha, keys, argv)
        } catch (err) {
          if (!isNoScript(err)) throw err
          return evalSource(script.source, script.sha, keys, argv)
        }
      })
    },
    evalSource(script, keys, args) {
      return wrapped(() => evalSource(script.source, script.sha, keys, args.map(String)))
    },
    waitForReplicas(key, replicas, timeoutMs) {
      return wait(key, String(replicas), String(timeoutMs))
    },
  }
}

/**
 * ioredis writes each command to its socket as it is sent: one write syscall per command, which on
 * loopback also wakes Redis, and costs the server more CPU than the rest of the store's work
 * (bench/results.md). node-redis instead writes the commands of one event-loop turn together
 * (setImmediate, one corked write). This gives an ioredis client the same: the first store command
 * of a turn corks the client's sockets (a Cluster's: each node's), and they are uncorked once the
 * turn's I/O callbacks ran, so every command sent meanwhile (by any request, or by the shop on the
 * same client) leaves in one writev per socket. Order and replies stay ioredis's own (its command
 * queue is filled as each command is sent); a command waits at most until the end of the turn. A
 * connection not ready yet is left alone: ioredis queues commands itself until then.
 */
function turnWrites(c: Record<string, unknown>): () => void {
  type Connection = { status?: unknown; stream?: { cork?: unknown; uncork?: unknown } }
  type Socket = { cork(): void; uncork(): void }
  const connections = (): Connection[] => (c.isCluster === true && typeof c.nodes === 'function'
    ? (c.nodes as (role: string) => Connection[]).call(c, 'all')
    : [c])
  let corked = false
  return () => {
    if (corked) return
    const sockets: Socket[] = []
    for (const { status, stream } of connections()) {
      if (status === 'ready' && typeof stream?.cork === 'function' && typeof stream.uncork === 'function') sockets.push(stream as Socket)
    }
    if (sockets.length === 0) return
    for (const socket of sockets) socket.cork()
    corked = true
    setImmediate(() => {
      corked = false
      for (const socket of sockets) socket.uncork()
    })
  }
}

function isNoScript(err: unknown): boolean {
  const message = err instanceof Error ? err.message : typeof err === 'string' ? err : ''
  return message.startsWith('NOSCRIPT') || message.includes('NOSCRIPT ')
}

/**
 * A Redis client this package can use: an ioredis `Redis` or `Cluster` (v5), or a node-redis
 * client or cluster (`redis` v4, v5 or v6, connected). Neither library is imported: the store
 * only calls the client's EVALSHA and EVAL (and, with `waitReplicas`, sends WAIT through an
 * ioredis pipeline or node-redis `sendCommand`).
 */
export interface RedisClientLike {
  /** ioredis: `evalsha(sha, numKeys, ...keys, ...args)`. */
  evalsha?: (...args: any[]) => unknown
  /** node-redis: `evalSha(sha, { keys, arguments })`. */
  evalSha?: (...args: any[]) => unknown
  eval?: (...args: any[]) => unknown
}
