/**
 * Child processes for the fleet tests: shop instances (app-process.ts) and a private
 * redis-server that the fault tests stop and start. Every process started here is tracked and
 * killed by `killAll()` (called from after hooks) and, as a last resort, when the test process exits.
 */
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { killChild, ProcessGroup } from '../processes'
import { REDIS_URL, unusedPort } from '../stores/redis-helpers'
import { sleep } from '../helpers'
import type { SqlKind } from '../stores/sql-helpers'

const APP_PROCESS = fileURLToPath(new URL('./app-process.ts', import.meta.url))
const REDIS_SERVER = '/usr/bin/redis-server'

const processes = new ProcessGroup()

/** Kills every process this module started that is still running. */
export function killAll(): Promise<void> {
  return processes.killAll()
}

/** A shop instance (test/fleet/app-process.ts) in its own process. */
export class AppInstance {
  readonly lines: string[] = []
  port = 0
  /** onPaid executions begun and not ended, by the ONPAID_BEGIN / ONPAID_END lines read so far. */
  handlersRunning = 0
  /** Resolves once every line the process wrote has been read (its stdout closed). */
  readonly outputEnded: Promise<void>
  private readonly watchers = new Set<() => void>()
  private stderr = ''

  constructor(readonly name: string, readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! })
    this.outputEnded = new Promise((resolve) => lines.once('close', resolve))
    lines.on('line', (line) => {
      this.lines.push(line)
      if (line.startsWith('ONPAID_BEGIN ')) this.handlersRunning += 1
      else if (line.startsWith('ONPAID_END ')) this.handlersRunning -= 1
      for (const watch of [...this.watchers]) watch()
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-8000)
    })
    child.once('exit', () => {
      for (const watch of [...this.watchers]) watch()
    })
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** The first line matching `pattern` (from the start of the output), waiting up to `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.lines.find((l) => pattern.test(l))
        if (line !== undefined) {
          done()
          resolve(line)
        } else if (!this.alive) {
          done()
          reject(new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}; stderr: ${this.stderr}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name}: no line ${pattern} within ${timeoutMs} ms; stderr: ${this.stderr}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        this.watchers.delete(check)
      }
      this.watchers.add(check)
      check()
    })
  }

  /** `LOG` lines with this reason code (see app-process.ts). */
  rejections(reason: string, outerTradeNo?: string): string[] {
    return this.lines.filter((l) => l.startsWith(`LOG `) && l.split(' ')[2] === reason &&
      (outerTradeNo === undefined || l.split(' ')[3] === outerTradeNo))
  }

  /** What it wrote to stderr lately, for the message of a failed test. */
  get errorOutput(): string {
    return this.stderr
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return killChild(this.child, signal)
  }
}

export interface AppEnv {
  SANDBOX_URL: string
  NOTIFY_URL: string
  PREFIX: string
  /** The app secret the sandbox signs with: one per fleet, so that no other sandbox's notification is ever valid here. */
  APP_SECRET?: string
  REDIS_URL?: string
  REDIS_CLUSTER?: string
  COUNT_REDIS_URL?: string
  WAIT_REPLICAS?: number
  WAIT_TIMEOUT_MS?: number
  COUNT_PREFIX?: string
  TOKEN_PREFIX?: string
  LEASE_MS?: number
  HANDLER_DELAY_MS?: number
  KILL_ON?: string
  WAIT_REDIS_MS?: number
  PAY_TIMEOUT_MS?: number
  UNSETTLED_AFTER_MS?: number
  SWEEP_EVERY_MS?: number
  STORE?: 'redis' | SqlKind
  STORE_TABLE?: string
  SHOP_TABLE?: string
  POOL_MAX?: number
  THROW_AFTER_WRITE?: number
}

/** Starts one instance and resolves once it printed READY. */
export async function startApp(name: string, env: AppEnv): Promise<AppInstance> {
  // The counts go where the test reads them (its REDIS_URL, database included), unless it says otherwise.
  const vars: Record<string, string> = { INSTANCE: name, PORT: '0', COUNT_REDIS_URL: REDIS_URL }
  for (const [key, value] of Object.entries(env)) if (value !== undefined) vars[key] = String(value)
  const child = processes.spawn(process.execPath, ['--import', 'tsx', APP_PROCESS], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, ...vars },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const app = new AppInstance(name, child)
  const ready = await app.waitForLine(/^READY \d+$/, 30_000)
  app.port = Number(ready.split(' ')[1])
  return app
}

/** Starts `n` instances one after the other (tsx compiles on first start; two cores). */
export async function startFleet(n: number, env: AppEnv): Promise<AppInstance[]> {
  const first = await startApp('app1', env)
  // The others start from tsx's cache: in parallel.
  const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startApp(`app${i + 2}`, env)))
  return [first, ...rest]
}

/**
 * A private redis-server on a free port, without persistence. `stop()` kills it (SIGKILL: as
 * abrupt as a crash or a pulled cable), `start()` brings it back on the same port, empty.
 */
export class RedisServer {
  private child: ChildProcess | null = null
  private output = ''

  private constructor(readonly port: number) {}

  static async create(): Promise<RedisServer> {
    return new RedisServer(await unusedPort())
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null
  }

  async start(): Promise<void> {
    if (this.running) return
    const child = processes.spawn(REDIS_SERVER, [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--enable-debug-command', 'yes', '--protected-mode', 'no', '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout!.on('data', (c: Buffer) => { this.output = (this.output + c.toString()).slice(-4000) })
    child.stderr!.on('data', (c: Buffer) => { this.output = (this.output + c.toString()).slice(-4000) })
    const deadline = Date.now() + 10_000
    for (;;) {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 })
      probe.on('error', () => undefined)
      try {
        await probe.connect()
        if ((await probe.ping()) === 'PONG') return
      } catch {
        // not up yet
      } finally {
        probe.disconnect()
      }
      if (!this.running) throw new Error(`redis-server on ${this.port} exited: ${this.output}`)
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer within 10 s: ${this.output}`)
      await sleep(50)
    }
  }

  async stop(): Promise<void> {
    const child = this.child
    this.child = null
    if (child) await killChild(child, 'SIGKILL')
  }

  /** A plain client to this server, for DEBUG SLEEP and inspection. Disconnect it yourself. */
  admin(): Redis {
    const redis = new Redis(this.url, { maxRetriesPerRequest: 1 })
    redis.on('error', () => undefined)
    return redis
  }
}

/** Every field of a hash as numbers. */
export async function counts(redis: Redis, key: string): Promise<Map<string, number>> {
  const raw = await redis.hgetall(key)
  return new Map(Object.entries(raw).map(([k, v]) => [k, Number(v)]))
}
