/**
 * Issue 14: three shop processes (test/fleet/app-process.ts) behind the random balancer, their
 * store and token cache on a real Redis Cluster through an ioredis Cluster. 500 payments, each
 * delivered 3 to 5 times at once, paced over several seconds, while a primary is SIGKILLed (its
 * replica takes over), or while slots move between primaries with `redis-cli --cluster reshard`.
 *
 * onPaid counts in a private redis-server (not the cluster, not the machine's Redis on 6379).
 */
import { expect } from 'chai'
import type { Redis } from 'ioredis'
import { cpus, loadavg } from 'node:os'
import { RedisStore } from '../../src/stores/redis'
import { createSandbox, type Sandbox, type SandboxPayment } from '../../src/testing/sandbox'
import { notificationFields } from '../../src/testing/sandbox/payments'
import { Balancer } from '../fleet/balancer'
import { counts, killAll, RedisServer, startFleet, type AppEnv, type AppInstance } from '../fleet/fleet-helpers'
import { RedisCluster, type ClusterNodeInfo } from '../stores/redis-cluster'
import { keySlot, uniquePrefix } from '../stores/redis-helpers'
import { sleep } from '../helpers'

const PAYMENTS = 500
/** Payments sent per tick, and the tick: 500 payments over about 10 s. */
const BATCH = 5
const TICK_MS = 100
const APP_ID = '20110698'
/** Retries every 1-3 s: a payment that met the outage comes back soon after it. */
const RETRY_SCHEDULE = [0, 1000, 1000, 2000, 2000, 3000, 3000, 5000, 5000, 10_000]

type Ranges = Array<[number, number]>
const inRanges = (slot: number, ranges: Ranges) => ranges.some(([a, b]) => slot >= a && slot <= b)

/** Attempts answered 503 (the store failed: STORE_FAILED), split by `onShard`, as "N between +a and +b ms after `t0`". */
function storeRefusals(s: Sandbox, t0: number, onShard: (no: string) => boolean): { shard: string; others: string } {
  const refused = s.deliveries.flatMap((d) => d.attempts).filter((a) => a.status === 503)
  const span = (list: typeof refused) => list.length === 0 ? 'none'
    : `${list.length} between +${Math.min(...list.map((a) => a.at - t0))} and +${Math.max(...list.map((a) => a.at - t0))} ms`
  return {
    shard: span(refused.filter((a) => onShard(String(a.fields.outer_trade_no)))),
    others: span(refused.filter((a) => !onShard(String(a.fields.outer_trade_no)))),
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

function summary(values: number[]): string {
  return values.length === 0 ? 'none'
    : `${values.length} payments, p50 ${Math.round(percentile(values, 50))} ms, p95 ${Math.round(percentile(values, 95))} ms, max ${Math.round(Math.max(...values))} ms`
}

/** Sandbox clock: first attempt sent to the first successful answer, ms, over every delivery of the payment. */
function waited(payment: SandboxPayment, copies: Sandbox['deliveries']): number {
  const attempts = [...payment.attempts, ...copies.flatMap((d) => d.attempts)]
  const first = Math.min(...attempts.map((a) => a.at))
  const acked = attempts.filter((a) => a.body === 'success').map((a) => a.at + a.durationMs)
  return Math.min(...acked) - first
}

describe('Redis Cluster: fleet of three instances', function () {
  this.timeout(240_000)
  const prefix = uniquePrefix('cluster-fleet')
  const run = Date.now().toString(36).slice(-6)
  let cluster: RedisCluster
  let countServer: RedisServer
  let countRedis: Redis
  let balancer: Balancer
  let sandbox: Sandbox | undefined
  let apps: AppInstance[] = []
  const note = (line: string) => console.log(`      ${line}`)
  const machine = () => `load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`

  before(async function () {
    this.timeout(120_000)
    cluster = await RedisCluster.start()
    countServer = await RedisServer.create()
    await countServer.start()
    countRedis = countServer.admin()
    balancer = new Balancer()
    await balancer.start()
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const app of apps) {
        process.stderr.write(`--- ${app.name} stderr:\n${app.errorOutput}\n--- ${app.name} last lines:\n${app.lines.slice(-15).join('\n')}\n`)
      }
    }
    for (const app of apps) balancer.remove(app.name)
    // The apps only: killAll() would take the counting redis-server (same process group) too.
    await Promise.all(apps.map((app) => app.kill()))
    apps = []
    await sandbox?.close()
    sandbox = undefined
  })

  after(async () => {
    await killAll()
    await balancer?.close()
    countRedis?.disconnect()
    await countServer?.stop()
    await cluster?.stop()
  })

  const notifyUrl = () => `${balancer.url}/gat/notify`

  async function fleet(label: string, env: Partial<AppEnv> = {}): Promise<{ s: Sandbox; storePrefix: string; countPrefix: string }> {
    const storePrefix = `${prefix}${label}:`
    sandbox = createSandbox({ retrySchedule: RETRY_SCHEDULE, notifyTimeoutMs: 15_000 })
    await sandbox.start()
    apps = await startFleet(3, {
      SANDBOX_URL: sandbox.url,
      NOTIFY_URL: notifyUrl(),
      REDIS_CLUSTER: cluster.seeds.map(({ host, port }) => `${host}:${port}`).join(','),
      COUNT_REDIS_URL: countServer.url,
      PREFIX: storePrefix,
      LEASE_MS: 4000,
      HANDLER_DELAY_MS: 20,
      ...env,
    })
    for (const app of apps) balancer.add(app.name, app.port)
    return { s: sandbox, storePrefix, countPrefix: `${storePrefix}count:` }
  }

  /**
   * Sends PAYMENTS payments, BATCH per TICK_MS, each at once as 3 to 5 copies; calls `midway`
   * (without waiting for it) once a third are out. Resolves with the payments and their copies.
   */
  async function sendPaced(s: Sandbox, tag: string, midway: () => Promise<unknown>) {
    const payments: SandboxPayment[] = []
    const copies = new Map<string, Sandbox['deliveries']>()
    let during: Promise<unknown> | undefined
    for (let i = 0; i < PAYMENTS; i++) {
      if (i > 0 && i % BATCH === 0) await sleep(TICK_MS)
      if (i === Math.floor(PAYMENTS / 3)) during = midway()
      const payment = s.sendNotification({ notifyUrl: notifyUrl(), outerTradeNo: `${tag}${run}${i}`, totalAmount: `${1 + (i % 50)}.00` })
      const fields = notificationFields(payment, s.appId)
      copies.set(payment.outerTradeNo, Array.from({ length: 2 + (i % 3) }, () => s.notify(notifyUrl(), fields)))
      payments.push(payment)
    }
    await during
    return { payments, copies }
  }

  /**
   * The outer_trade_nos the router logged as possibly run twice (handle.ts markDone): its
   * done-marker was not stored, or its claim was gone when the handler finished (a claim lost in
   * the failover, which another delivery may have taken meanwhile).
   */
  function loggedAtLeastOnce(): { markerFailed: Set<string>; claimLost: Set<string> } {
    const markerFailed = new Set<string>()
    const claimLost = new Set<string>()
    for (const app of apps) {
      for (const line of app.lines) {
        const [tag, , reason, no] = line.split(' ')
        if (tag !== 'LOG') continue
        if (reason === 'STORE_FAILED' && line.includes('done-marker was not stored')) markerFailed.add(no)
        if (line.includes('expired before the handler finished')) claimLost.add(no)
      }
    }
    return { markerFailed, claimLost }
  }

  async function expectAllAcknowledged(s: Sandbox): Promise<void> {
    await s.waitIdle(120_000)
    const states = new Map<string, number>()
    for (const d of s.deliveries) states.set(d.state, (states.get(d.state) ?? 0) + 1)
    expect(Object.fromEntries(states), 'delivery states (none abandoned)').to.deep.equal({ acknowledged: s.deliveries.length })
  }

  /** A done-marker for every payment, read through a fresh client: nothing lost. */
  async function expectAllDone(storePrefix: string, payments: SandboxPayment[]): Promise<void> {
    const client = await cluster.ioredis()
    try {
      const store = new RedisStore({ client, prefix: storePrefix })
      const results = await Promise.all(payments.map((p) => store.claim(`${APP_ID}:paid:${p.outerTradeNo}`)))
      expect(payments.filter((_, i) => results[i].status !== 'done').map((p) => p.outerTradeNo), 'payments without a done-marker').to.deep.equal([])
    } finally {
      client.disconnect()
    }
  }

  it(`${PAYMENTS} payments × 3-5 copies with waitReplicas: 1, a primary SIGKILLed mid-run and its replica promoted: all acknowledged, onPaid again only where the router logged it may`, async () => {
    const { s, storePrefix, countPrefix } = await fleet('failover', { WAIT_REPLICAS: 1, WAIT_TIMEOUT_MS: 300 })
    const [victim] = await cluster.primaries()
    const { replicas: [heir] } = await cluster.shardOfSlot(victim.slots[0][0])
    const timeline: Record<string, number> = {}
    const started = Date.now()
    const { payments, copies } = await sendPaced(s, 'K', async () => {
      timeline.kill = Date.now() - started
      await cluster.kill(victim.port)
      await cluster.waitHealthy(60_000)
      timeline.promoted = Date.now() - started
      // As an operator would: the crashed node comes back, as the new primary's replica.
      await cluster.restart(victim.port)
      timeline.rejoined = Date.now() - started
    })
    await expectAllAcknowledged(s)
    timeline.idle = Date.now() - started

    const paid = await counts(countRedis, `${countPrefix}paid`)
    const begun = await counts(countRedis, `${countPrefix}started`)
    const onFailedShard = (no: string) => inRanges(keySlot(`${storePrefix}{${APP_ID}:paid:${no}}`), victim.slots)
    expect(payments.filter((p) => !paid.has(p.outerTradeNo)).map((p) => p.outerTradeNo), 'payments whose onPaid never completed').to.deep.equal([])
    const twice = payments.map((p) => p.outerTradeNo).filter((no) => (begun.get(no) ?? 0) > 1)
    const { markerFailed, claimLost } = loggedAtLeastOnce()
    // At-least-once applies exactly there (docs/redis-cluster.md): a second run only where the
    // router logged that the done-marker was not stored or the claim was gone.
    expect(twice.filter((no) => !markerFailed.has(no) && !claimLost.has(no)), 'onPaid run twice without a log saying it may').to.deep.equal([])
    await expectAllDone(storePrefix, payments)

    const completeFailures = apps.flatMap((a) => a.lines).filter((l) => l.startsWith('COMPLETE_FAILED '))
    const notReplicated = completeFailures.filter((l) => l.includes('replica(s) within')).length
    const shard = payments.filter((p) => onFailedShard(p.outerTradeNo))
    const others = payments.filter((p) => !onFailedShard(p.outerTradeNo))
    const wait = (list: SandboxPayment[]) => list.map((p) => waited(p, copies.get(p.outerTradeNo)!))
    const sentAround = (p: SandboxPayment) => p.createdAt - started >= timeline.kill - 2000 && p.createdAt - started <= timeline.promoted
    expect(shard.length, 'payments on the failed shard').to.be.greaterThan(50)
    note(`timeline (ms from the first payment): kill ${timeline.kill}, replica ${heir.port} promoted ${timeline.promoted}, ` +
      `old primary back as replica ${timeline.rejoined}, all acknowledged ${timeline.idle}; ${machine()}`)
    const refusals = storeRefusals(s, started + timeline.kill, onFailedShard)
    note(`deliveries answered 503 (store failed), ms from the kill: failed shard ${refusals.shard}; other shards ${refusals.others}`)
    note(`failed shard, sent within 2 s before the kill until the promotion: ${summary(wait(shard.filter(sentAround)))}`)
    note(`failed shard, all: ${summary(wait(shard))}`)
    note(`other shards, sent in the same window: ${summary(wait(others.filter(sentAround)))}`)
    note(`other shards, all: ${summary(wait(others))}`)
    note(`onPaid run twice: ${twice.length} (${twice.map((no) => `${no}${onFailedShard(no) ? '' : ' (other shard)'}`).join(', ') || 'none'}); ` +
      `logged by the router: done-marker not stored ${markerFailed.size}, claim gone when the handler finished ${claimLost.size}; ` +
      `complete() rejections: ${completeFailures.length}, of which WAIT short of a replica: ${notReplicated}; ` +
      `other reasons: ${[...new Set(completeFailures.filter((l) => !l.includes('replica(s) within')).map((l) => l.split(' ').slice(2).join(' ').slice(0, 60)))].join(' | ') || 'none'}`)
  })

  it(`${PAYMENTS} payments × 3-5 copies while redis-cli --cluster reshard moves 2000 slots: nothing lost, nothing doubled`, async () => {
    const { s, storePrefix, countPrefix } = await fleet('reshard')
    const [from, to] = await cluster.primaries()
    const before = from.slots
    let moved: Ranges = []
    const timeline: Record<string, number> = {}
    const started = Date.now()
    const { payments } = await sendPaced(s, 'R', async () => {
      timeline.reshardStart = Date.now() - started
      const { ms } = await cluster.reshard(from.port, to.port, 2000)
      timeline.reshardEnd = Date.now() - started
      timeline.reshardMs = Math.round(ms)
      const after = (await cluster.layout()).find((n: ClusterNodeInfo) => n.port === to.port)!.slots
      // Slots that were the source's and are now the target's, as ranges.
      for (let slot = 0; slot < 16384; slot++) {
        if (!inRanges(slot, before) || !inRanges(slot, after)) continue
        const last = moved.at(-1)
        if (last && last[1] === slot - 1) last[1] = slot
        else moved.push([slot, slot])
      }
    })
    await expectAllAcknowledged(s)
    timeline.idle = Date.now() - started
    await cluster.waitHealthy()

    const paid = await counts(countRedis, `${countPrefix}paid`)
    const begun = await counts(countRedis, `${countPrefix}started`)
    const nos = payments.map((p) => p.outerTradeNo)
    expect(nos.filter((no) => paid.get(no) !== 1), 'not completed exactly once').to.deep.equal([])
    expect(nos.filter((no) => begun.get(no) !== 1), 'not started exactly once').to.deep.equal([])
    await expectAllDone(storePrefix, payments)

    const movedSlotCount = moved.reduce((n, [a, b]) => n + b - a + 1, 0)
    // Counted from the slot map before and after; one run under load counted 1985 of the 2000 asked
    // for (cause not found yet). What this test proves is the line above: nothing lost, nothing doubled.
    expect(movedSlotCount, 'slots moved').to.be.greaterThan(1000)
    const inMoved = payments.filter((p) => inRanges(keySlot(`${storePrefix}{${APP_ID}:paid:${p.outerTradeNo}}`), moved))
    const duringMove = inMoved.filter((p) => p.createdAt - started >= timeline.reshardStart && p.createdAt - started <= timeline.reshardEnd)
    expect(inMoved.length, 'payments whose slot moved').to.be.greaterThan(20)
    const storeFailures = apps.flatMap((app) => app.rejections('STORE_FAILED'))
    const refusals = storeRefusals(s, started + timeline.reshardStart, (no) => inRanges(keySlot(`${storePrefix}{${APP_ID}:paid:${no}}`), moved))
    note(`reshard of 2000 slots took ${timeline.reshardMs} ms (ms ${timeline.reshardStart}-${timeline.reshardEnd} of the run); all acknowledged at ${timeline.idle} ms; ${machine()}`)
    note(`payments in moved slots: ${inMoved.length}, sent while their slots moved: ${duringMove.length}; ` +
      `answers fail for a store error: ${storeFailures.length}${storeFailures.length ? ` (${[...new Set(storeFailures.map((l) => l.slice(l.indexOf('failed: ') + 8, l.indexOf('failed: ') + 70)))].join(' | ')})` : ''}`)
    note(`deliveries answered 503, ms from the reshard's start: in moved slots ${refusals.shard}; other slots ${refusals.others}`)
  })
})
