/**
 * A real Redis Cluster for the tests: 3 primaries and 3 replicas, each a `redis-server
 * --cluster-enabled yes` started here on free ports (never 6379) in a temporary directory, formed
 * with `redis-cli --cluster create --cluster-replicas 1`. `cluster-node-timeout` is 1.5 s, so a
 * killed primary's replica takes over in a few seconds.
 *
 * Teardown: `stop()` kills every node by its pid and deletes the directory. The process group's
 * exit hook (test/processes.ts) does the same when the test process exits, and a watchdog shell
 * kills the nodes when the test process is gone without running it (SIGKILL, OOM).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import { createCluster } from 'redis'
import { createCluster as createCluster6 } from 'redis6'
import { killChild, ProcessGroup } from '../processes'
import { IOREDIS_CLUSTER_OPTIONS } from './cluster-options'
import { keySlot } from './redis-helpers'
import { sleep } from '../helpers'

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const REDIS_CLI = process.env.REDIS_CLI ?? 'redis-cli'
const HOST = '127.0.0.1'

/** One node as the cluster sees it (CLUSTER NODES). */
export interface ClusterNodeInfo {
  id: string
  port: number
  role: 'primary' | 'replica'
  /** The primary a replica follows. */
  primaryId: string | null
  /** Flagged `fail` (or `fail?`) by the node asked. */
  failing: boolean
  /** Slot ranges it serves, inclusive. */
  slots: Array<[number, number]>
}

export interface ClusterStartOptions {
  primaries?: number
  replicasPerPrimary?: number
  /** cluster-node-timeout, ms. */
  nodeTimeoutMs?: number
  /** How long to wait for the cluster to form and every replica to sync, ms. */
  readyTimeoutMs?: number
}

/** A port that is free, whose cluster bus port (port + 10 000) is free too; outside the ephemeral range. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    if (taken.has(port) || taken.has(port + 10_000)) continue
    if (await canListen(port) && await canListen(port + 10_000)) return port
  }
  throw new Error('no free port pair (p, p + 10000) found in 20000-39999')
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/** A short-lived plain connection to one node, for inspection. */
async function withNode<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, commandTimeout: 2000 })
  redis.on('error', () => undefined)
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}

/** CLUSTER NODES, parsed (slots being imported/migrated, `[...]`, are left out). */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  return text.trim().split('\n').filter(Boolean).map((line) => {
    const [id, address, flags, primaryId, , , , , ...slotFields] = line.trim().split(' ')
    const flagSet = new Set(flags.split(','))
    const slots: Array<[number, number]> = []
    for (const field of slotFields) {
      if (field.startsWith('[')) continue
      const [from, to] = field.split('-').map(Number)
      slots.push([from, to ?? from])
    }
    return {
      id,
      port: Number(address.split('@')[0].split(':').pop()),
      role: flagSet.has('master') ? 'primary' : 'replica',
      primaryId: primaryId === '-' ? null : primaryId,
      failing: flagSet.has('fail') || flagSet.has('fail?'),
      slots,
    }
  })
}

class ClusterNodeProcess {
  child: ChildProcess | null = null
  private output = ''

  constructor(readonly port: number, private readonly dir: string, private readonly nodeTimeoutMs: number, private readonly group: ProcessGroup) {}

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null
  }

  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined
  }

  /** Starts the server (again: same port, same nodes-<port>.conf, so the same node id; data empty). */
  async start(): Promise<void> {
    if (this.running) return
    const file = (name: string) => join(this.dir, `${name}-${this.port}`)
    const child = this.group.spawn(REDIS_SERVER, [
      '--port', String(this.port), '--bind', HOST, '--protected-mode', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `${file('nodes')}.conf`,
      '--cluster-node-timeout', String(this.nodeTimeoutMs),
      '--save', '', '--appendonly', 'no', '--dir', this.dir, '--logfile', `${file('redis')}.log`,
      // Replicas sync at once (Redis 7 waits 5 s by default to batch replicas).
      '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0',
    ], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    const keep = (chunk: Buffer) => { this.output = (this.output + chunk.toString()).slice(-4000) }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    let spawnError: Error | undefined
    child.once('error', (err) => { spawnError = err })
    if (child.pid !== undefined) writeFileSync(`${file('node')}.pid`, String(child.pid))
    const deadline = Date.now() + 15_000
    for (;;) {
      if (spawnError) throw new Error(`cannot start ${REDIS_SERVER} (install Debian's redis-server): ${spawnError.message}`)
      try {
        if (await withNode(this.port, (r) => r.ping()) === 'PONG') return
      } catch {
        // not up yet
      }
      if (!this.running && !spawnError) throw new Error(`redis-server on ${this.port} exited: ${this.output}`)
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer within 15 s: ${this.output}`)
      await sleep(50)
    }
  }

  async kill(): Promise<void> {
    const child = this.child
    this.child = null
    if (child) await killChild(child, 'SIGKILL')
  }
}

export class RedisCluster {
  readonly group = new ProcessGroup()
  private readonly nodes: ClusterNodeProcess[]
  private watchdog: ChildProcess | undefined

  private constructor(readonly dir: string, ports: number[], readonly nodeTimeoutMs: number) {
    this.nodes = ports.map((port) => new ClusterNodeProcess(port, dir, nodeTimeoutMs, this.group))
  }

  /** Starts the nodes, forms the cluster, and waits until every slot is served and every replica is in sync. */
  static async start(options: ClusterStartOptions = {}): Promise<RedisCluster> {
    const primaries = options.primaries ?? 3
    const replicas = options.replicasPerPrimary ?? 1
    const taken = new Set<number>()
    const ports: number[] = []
    for (let i = 0; i < primaries * (1 + replicas); i++) {
      const port = await freeClusterPort(taken)
      taken.add(port)
      taken.add(port + 10_000)
      ports.push(port)
    }
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'gat-redis-cluster-')))
    const cluster = new RedisCluster(dir, ports, options.nodeTimeoutMs ?? 1500)
    try {
      cluster.startWatchdog()
      await Promise.all(cluster.nodes.map((node) => node.start()))
      await run(REDIS_CLI, ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`),
        '--cluster-replicas', String(replicas), '--cluster-yes'], 60_000)
      await cluster.waitHealthy(options.readyTimeoutMs ?? 60_000)
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /**
   * Kills the nodes when this test process is gone without its exit hook having run (SIGKILL):
   * a detached shell polls our pid, then kills each pid listed in the directory whose working
   * directory is still this cluster's (not a reused pid), and deletes the directory.
   */
  private startWatchdog(): void {
    const script = `
      while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
      for f in "$2"/node-*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$2" ] && kill -9 "$pid" 2>/dev/null
      done
      rm -rf "$2"`
    const watchdog = spawn('sh', ['-c', script, 'watchdog', String(process.pid), this.dir], { detached: true, stdio: 'ignore' })
    watchdog.on('error', () => undefined)
    watchdog.unref()
    this.watchdog = watchdog
  }

  get ports(): number[] {
    return this.nodes.map((n) => n.port)
  }

  /** Ports of the nodes that are running now. */
  get runningPorts(): number[] {
    return this.nodes.filter((n) => n.running).map((n) => n.port)
  }

  /** Where clients start discovering the cluster. */
  get seeds(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: HOST, port }))
  }

  /** The cluster as one running node sees it. */
  async layout(): Promise<ClusterNodeInfo[]> {
    let lastError: unknown
    for (const port of this.runningPorts) {
      try {
        return parseClusterNodes(String(await withNode(port, (r) => r.cluster('NODES'))))
      } catch (err) {
        lastError = err
      }
    }
    throw new Error(`no running node answered CLUSTER NODES: ${String(lastError)}`)
  }

  /** The primary serving `slot` and its replicas. */
  async shardOfSlot(slot: number): Promise<{ primary: ClusterNodeInfo; replicas: ClusterNodeInfo[] }> {
    const nodes = await this.layout()
    const primary = nodes.find((n) => n.role === 'primary' && !n.failing && n.slots.some(([a, b]) => slot >= a && slot <= b))
    if (!primary) throw new Error(`no live primary serves slot ${slot}`)
    return { primary, replicas: nodes.filter((n) => n.primaryId === primary.id) }
  }

  /** The primary serving a key. */
  async primaryOfKey(key: string): Promise<ClusterNodeInfo> {
    return (await this.shardOfSlot(keySlot(key))).primary
  }

  /** The live primaries, with their slots. */
  async primaries(): Promise<ClusterNodeInfo[]> {
    return (await this.layout()).filter((n) => n.role === 'primary' && !n.failing && n.slots.length > 0)
  }

  /** Runs `fn` on a plain connection to one node (READONLY: a replica answers instead of redirecting). */
  onNode<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
    return withNode(port, async (r) => {
      await r.call('READONLY')
      return fn(r)
    })
  }

  /** A hash as a replica holds it right now. */
  readOnReplica(port: number, key: string): Promise<Record<string, string>> {
    return this.onNode(port, (r) => r.hgetall(key))
  }

  /**
   * Stops a replica from receiving its primary's writes, while both stay up and the cluster
   * bus keeps working: the replica's link is cut (CLIENT KILL on the primary) and it cannot
   * reconnect (a wrong `masterauth`). What replication lag looks like, made deterministic: a
   * failover now promotes a replica without the writes that follow.
   */
  async cutReplication(replicaPort: number, primaryPort: number): Promise<void> {
    await withNode(replicaPort, (r) => r.config('SET', 'masterauth', 'not-the-primary-password'))
    await withNode(primaryPort, (r) => r.client('KILL', 'TYPE', 'replica'))
    const deadline = Date.now() + 10_000
    while (parseInfo(await withNode(replicaPort, (r) => r.info('replication'))).get('master_link_status') !== 'down') {
      if (Date.now() > deadline) throw new Error(`replica ${replicaPort} still linked to its primary after 10 s`)
      await sleep(50)
    }
  }

  /** Undoes `cutReplication`'s wrong password (on whatever the replica has become). */
  async healReplication(replicaPort: number): Promise<void> {
    await withNode(replicaPort, (r) => r.config('SET', 'masterauth', ''))
  }

  /** SIGKILLs one node (a crash: no shutdown, nothing saved). */
  async kill(port: number): Promise<void> {
    await this.node(port).kill()
  }

  /** Starts a killed node again; it rejoins (an old primary comes back as a replica) and resyncs. */
  async restart(port: number, timeoutMs = 60_000): Promise<void> {
    await this.node(port).start()
    await this.waitHealthy(timeoutMs)
  }

  /**
   * Waits until every running node reports `cluster_state:ok` with all 16384 slots served, all
   * running nodes agree on which primary serves which slots, no slot is served by a stopped
   * node, every running node is a primary with slots or a replica of one, and every running
   * replica's link to its primary is up and synced.
   */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let why = ''
    for (;;) {
      why = await this.unhealthy()
      if (why === '') return
      if (Date.now() > deadline) throw new Error(`cluster not healthy after ${timeoutMs} ms: ${why}`)
      await sleep(100)
    }
  }

  /** Why the cluster is not healthy yet, or '' when it is. */
  private async unhealthy(): Promise<string> {
    const running = new Set(this.runningPorts)
    let agreed: string | undefined
    for (const port of running) {
      let info: Map<string, string>
      let replication: Map<string, string>
      let nodes: ClusterNodeInfo[]
      try {
        [info, replication, nodes] = await withNode(port, async (r) => [
          parseInfo(String(await r.cluster('INFO'))),
          parseInfo(await r.info('replication')),
          parseClusterNodes(String(await r.cluster('NODES'))),
        ] as const)
      } catch (err) {
        return `${port}: ${err instanceof Error ? err.message : String(err)}`
      }
      if (info.get('cluster_state') !== 'ok') return `${port}: cluster_state ${info.get('cluster_state')}`
      if (info.get('cluster_slots_ok') !== '16384') return `${port}: cluster_slots_ok ${info.get('cluster_slots_ok')}`
      if (replication.get('role') === 'slave') {
        if (replication.get('master_link_status') !== 'up') return `${port}: replica link ${replication.get('master_link_status')}`
        if (replication.get('master_sync_in_progress') !== '0') return `${port}: replica still syncing`
      }
      const serving = nodes.filter((n) => n.role === 'primary' && n.slots.length > 0)
      const stopped = serving.find((n) => !running.has(n.port))
      if (stopped) return `${port} sees slots served by stopped node ${stopped.port}`
      const view = JSON.stringify(serving.map((n) => [n.port, n.slots]).sort((a, b) => Number(a[0]) - Number(b[0])))
      if (agreed !== undefined && view !== agreed) return `nodes disagree on slot owners: ${agreed} vs ${view}`
      agreed = view
      for (const node of nodes.filter((n) => running.has(n.port))) {
        if (node.failing) return `${port} sees running node ${node.port} as failing`
        if (node.role === 'primary' && node.slots.length === 0) return `${port} sees ${node.port} as a primary without slots`
        if (node.role === 'replica' && !serving.some((p) => p.id === node.primaryId)) return `${port} sees ${node.port} follow a primary without slots`
      }
    }
    return ''
  }

  /**
   * Moves `slots` slots from one primary to another with `redis-cli --cluster reshard`, while
   * clients keep running (MIGRATE, keys in batches; clients get ASK/TRYAGAIN meanwhile).
   */
  async reshard(fromPort: number, toPort: number, slots: number, timeoutMs = 120_000): Promise<{ ms: number; output: string }> {
    const nodes = await this.layout()
    const id = (port: number) => {
      const node = nodes.find((n) => n.port === port)
      if (!node) throw new Error(`no node on ${port}`)
      return node.id
    }
    const started = performance.now()
    const output = await run(REDIS_CLI, ['--cluster', 'reshard', `${HOST}:${toPort}`,
      '--cluster-from', id(fromPort), '--cluster-to', id(toPort), '--cluster-slots', String(slots),
      '--cluster-yes', '--cluster-pipeline', '20'], timeoutMs)
    return { ms: performance.now() - started, output }
  }

  /** A connected ioredis Cluster client with the recommended fail-fast settings (override any). */
  async ioredis(options: ClusterOptions = {}): Promise<Cluster> {
    const client = new Cluster(this.seeds, {
      ...IOREDIS_CLUSTER_OPTIONS,
      ...options,
      redisOptions: { ...IOREDIS_CLUSTER_OPTIONS.redisOptions, ...options.redisOptions },
      lazyConnect: true,
    })
    client.on('error', () => undefined)
    await client.connect()
    return client
  }

  /**
   * A connected node-redis cluster client (v5, or v6 with `{ version: 6 }`), fail-fast as the
   * README recommends. v6 refreshes the topology `topologyRefreshMs` after a node connection
   * starts reconnecting (its `topologyRefreshOnReconnectionAttemptStrategy`); v5 has no such option.
   */
  async nodeRedis({ version = 5, topologyRefreshMs = 1000 }: { version?: 5 | 6; topologyRefreshMs?: number } = {}) {
    const rootNodes = this.seeds.map(({ host, port }) => ({ url: `redis://${host}:${port}` }))
    const defaults = { disableOfflineQueue: true, socket: { connectTimeout: 1000, reconnectStrategy: 100 } }
    const client = version === 6
      ? createCluster6({ rootNodes, defaults, topologyRefreshOnReconnectionAttemptStrategy: topologyRefreshMs })
      : createCluster({ rootNodes, defaults })
    client.on('error', () => undefined)
    await client.connect()
    return client
  }

  /** Kills every node by pid and deletes the directory. */
  async stop(): Promise<void> {
    await this.group.killAll()
    this.watchdog?.kill('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }

  private node(port: number): ClusterNodeProcess {
    const node = this.nodes.find((n) => n.port === port)
    if (!node) throw new Error(`no node of this cluster on ${port}`)
    return node
  }
}
