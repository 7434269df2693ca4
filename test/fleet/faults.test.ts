/**
 * GitHub issue 3, the faults: three shop processes behind a random balancer whose store Redis is
 * a private redis-server this test stops, starts and puts to sleep; and a process SIGKILLed
 * inside onPaid. onPaid counts in the machine's Redis (always up), so the counts survive both.
 *
 * The store client is configured fail-fast (app-process.ts): maxRetriesPerRequest 1, no offline
 * queue, commandTimeout 1000 ms.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createSandbox, type Sandbox, type SandboxOptions, type SandboxPayment } from '../../src/testing/sandbox'
import { notificationFields } from '../../src/testing/sandbox/payments'
import { encodeForm, signNotification } from '../../src/testing/sign-notification'
import { RedisStore } from '../../src/stores/redis'
import { deleteKeys, REDIS_URL, uniquePrefix } from '../stores/redis-helpers'
import { sleep, waitFor } from '../helpers'
import { Balancer } from './balancer'
import { counts, killAll, RedisServer, startFleet, type AppEnv, type AppInstance } from './fleet-helpers'

const APP_ID = '20110698'
/** The store client's commandTimeout (app-process.ts) plus a margin for a loaded two-core machine. */
const FAST_ANSWER_MS = 3000

describe('fleet faults: store Redis unreachable, gone, slow; an instance killed inside onPaid', function () {
  this.timeout(120_000)
  const prefix = uniquePrefix('fleet-faults')
  const run = Date.now().toString(36).slice(-6)
  let countRedis: Redis
  let server: RedisServer
  let balancer: Balancer
  let sandbox: Sandbox | undefined
  let apps: AppInstance[] = []
  let label = ''

  before(async () => {
    countRedis = new Redis(REDIS_URL)
    server = await RedisServer.create()
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
    await Promise.all(apps.map((app) => app.kill()))
    apps = []
    await sandbox?.close()
    sandbox = undefined
  })

  after(async () => {
    await killAll()
    await server?.stop()
    await balancer?.close()
    await sandbox?.close()
    if (countRedis) {
      await deleteKeys(countRedis, prefix)
      await countRedis.quit()
    }
  })

  const notifyUrl = () => `${balancer.url}/gat/notify`
  const storePrefix = () => `${prefix}${label}:`
  const paidCounts = () => counts(countRedis, `${storePrefix()}count:paid`)
  const startedCounts = () => counts(countRedis, `${storePrefix()}count:started`)

  async function fleet(name: string, env: Partial<AppEnv>, options: SandboxOptions): Promise<Sandbox> {
    label = name
    sandbox = createSandbox(options)
    await sandbox.start()
    apps = await startFleet(3, {
      SANDBOX_URL: sandbox.url,
      NOTIFY_URL: notifyUrl(),
      REDIS_URL: server.url,
      PREFIX: storePrefix(),
      ...env,
    })
    for (const app of apps) balancer.add(app.name, app.port)
    return sandbox
  }

  function send(s: Sandbox, tag: string, n: number): SandboxPayment[] {
    return Array.from({ length: n }, (_, i) => s.sendNotification({ notifyUrl: notifyUrl(), outerTradeNo: `${tag}${run}${i}`, totalAmount: '10.00' }))
  }

  /** Every payment processed to completion exactly once (and begun once), and acknowledged. */
  async function expectProcessedOnce(payments: SandboxPayment[]): Promise<void> {
    const paid = await paidCounts()
    const begun = await startedCounts()
    const nos = payments.map((p) => p.outerTradeNo)
    expect(nos.filter((no) => paid.get(no) !== 1), 'not completed exactly once').to.deep.equal([])
    expect(nos.filter((no) => begun.get(no) !== 1), 'not started exactly once').to.deep.equal([])
    expect(payments.filter((p) => p.state !== 'acknowledged').map((p) => `${p.outerTradeNo}: ${p.state}`)).to.deep.equal([])
  }

  const note = (line: string) => console.log(`      ${line}`)

  function expectFastFails(payments: SandboxPayment[]): void {
    const attempts = payments.flatMap((p) => p.attempts)
    expect(attempts.length).to.be.greaterThan(0)
    note(`${attempts.length} answers while Redis was unavailable, slowest ${Math.round(Math.max(...attempts.map((a) => a.durationMs)))} ms`)
    for (const a of attempts) {
      expect(a.body, `answer to ${a.fields.outer_trade_no} #${a.attempt}`).to.equal('fail')
      expect(a.status).to.equal(503)
      expect(a.durationMs, `answer time of ${a.fields.outer_trade_no} #${a.attempt}`).to.be.below(FAST_ANSWER_MS)
    }
  }

  it('Redis unreachable at start: instances start, answer fail fast and run no onPaid; once Redis is up each payment is processed once', async () => {
    expect(server.running).to.equal(false)
    const s = await fleet('down', { WAIT_REDIS_MS: 0, LEASE_MS: 1500 }, {
      retrySchedule: [0, 1500, 1500, 1500, 2000, 2000, 3000, 3000, 3000, 3000],
    })
    const payments = send(s, 'D', 20)
    await waitFor('two answers to every notification', () => payments.every((p) => p.attempts.length >= 2), { timeoutMs: 15_000 })
    expectFastFails(payments)
    expect((await paidCounts()).size, 'onPaid completions while Redis is down').to.equal(0)
    expect((await startedCounts()).size, 'onPaid starts while Redis is down').to.equal(0)
    expect(apps.every((app) => app.alive), 'instances alive').to.equal(true)
    expect(apps.some((app) => app.rejections('STORE_FAILED').length > 0)).to.equal(true)

    await server.start()
    await s.waitIdle(30_000)
    await expectProcessedOnce(payments)
  })

  it('the pay route keeps working on its token while Redis is down, until the token expires', async () => {
    await server.start()
    const s = await fleet('paydown', { LEASE_MS: 1500 }, { tokenTtlSec: 6 })
    const pay = async (base: string, no: string) => {
      const started = performance.now()
      const res = await fetch(`${base}/gat/pay`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ outer_trade_no: no }),
      })
      return { status: res.status, body: await res.text(), ms: performance.now() - started }
    }
    // Every instance learns the token while Redis is up (asked directly, not through the balancer).
    for (const [i, app] of apps.entries()) expect((await pay(app.url, `W${run}${i}`)).status).to.equal(200)
    expect(s.stats.tokenCalls).to.equal(1)
    const admin = server.admin()
    const cached = JSON.parse((await admin.get(`${storePrefix()}token:current`))!) as { refreshAt: number; expiresAt: number }
    admin.disconnect()

    await server.stop()
    // Before refreshAt: the token in each process's memory, Redis not even asked.
    const before = await Promise.all(Array.from({ length: 30 }, (_, i) => pay(balancer.url, `X${run}${i}`)))
    expect(before.map((r) => r.status)).to.deep.equal(before.map(() => 200))

    // Between refreshAt and expiresAt: the shared cache is asked, fails fast, the process's own token is used.
    await sleep(Math.max(0, cached.refreshAt + 100 - Date.now()))
    expect(Date.now(), 'still before the token expires').to.be.below(cached.expiresAt - 500)
    const grace = await Promise.all(apps.map((app, i) => pay(app.url, `Y${run}${i}`)))
    expect(grace.map((r) => r.status), 'pays after refreshAt, Redis down').to.deep.equal([200, 200, 200])
    expect(s.stats.tokenCalls, 'no token created while Redis is down').to.equal(1)
    expect(apps.every((app) => app.lines.some((l) => l.includes('token cache unreachable')))).to.equal(true)

    // After expiresAt: no usable token; the pay is refused fast and nothing reaches Guanaitong.
    await sleep(Math.max(0, cached.expiresAt + 100 - Date.now()))
    const payCalls = s.stats.payCalls
    const expired = await pay(balancer.url, `Z${run}`)
    expect(expired.status, expired.body).to.equal(503)
    expect(expired.ms).to.be.below(FAST_ANSWER_MS)
    expect(s.stats.payCalls).to.equal(payCalls)
    expect(s.stats.tokenCalls).to.equal(1)
  })

  it('Redis gone mid-run: in-flight handlers still answer success, pending notifications are answered fail, and after a restart each is processed once', async () => {
    await server.start()
    const s = await fleet('gone', { LEASE_MS: 1500, HANDLER_DELAY_MS: 300 }, {
      retrySchedule: [0, 500, 1000, 1000, 1500, 2000, 2000, 3000, 3000, 3000],
    })
    const early = send(s, 'A', 10)
    await Promise.all(early.map((p) => s.waitForAcknowledged(p.outerTradeNo, 15_000)))

    // B: claimed and inside onPaid (300 ms of work) when Redis dies.
    const inFlight = send(s, 'B', 20)
    await waitFor('every B inside onPaid', async () => {
      const begun = await startedCounts()
      return inFlight.every((p) => begun.has(p.outerTradeNo))
    }, { timeoutMs: 10_000, everyMs: 10 })
    await server.stop()
    // C: arrive while Redis is gone.
    const pending = send(s, 'C', 20)
    await waitFor('two answers to every C', () => pending.every((p) => p.attempts.length >= 2), { timeoutMs: 15_000 })
    expect(server.running).to.equal(false)
    expectFastFails(pending)
    expect(pending.some((p) => p.state !== 'pending')).to.equal(false)
    const paidWhileDown = await paidCounts()
    expect(pending.filter((p) => paidWhileDown.has(p.outerTradeNo)), 'C processed while Redis was down').to.deep.equal([])

    await server.start()
    await s.waitIdle(30_000)
    await expectProcessedOnce([...early, ...inFlight, ...pending])
    // B's handlers finished, so B was answered success although the done-marker could not be stored.
    expect(inFlight.every((p) => p.attempts[0].body === 'success')).to.equal(true)
    expect(apps.every((app) => app.alive)).to.equal(true)
  })

  it('slow Redis (DEBUG SLEEP 3): a notification is answered fail within the command timeout, then processed once', async () => {
    await server.start()
    const s = await fleet('slow', { LEASE_MS: 1500 }, { retrySchedule: [0, 500, 500, 1000, 1000, 2000, 2000, 3000, 3000, 3000] })
    const warm = send(s, 'W', 3)
    await Promise.all(warm.map((p) => s.waitForAcknowledged(p.outerTradeNo, 15_000)))

    const admin = server.admin()
    const asleep = admin.call('DEBUG', 'SLEEP', '3')
    await sleep(100)
    const slowed = send(s, 'S', 5)
    await waitFor('a first answer to every S', () => slowed.every((p) => p.attempts.length >= 1), { timeoutMs: 10_000 })
    for (const p of slowed) {
      const first = p.attempts[0]
      expect(first.body).to.equal('fail')
      // Answered while Redis still sleeps (3 s): the command timeout (1 s), not Redis, decided.
      expect(first.durationMs).to.be.below(2000)
    }
    await asleep
    const awake = Date.now()
    await s.waitIdle(30_000)
    await expectProcessedOnce([...warm, ...slowed])
    // The claims whose replies timed out were still executed when Redis woke up (they count as
    // attempts). RedisStore gives such a claim back at once (a RELEASE queued behind it), so the
    // first retry after Redis woke processes the payment; without that, the orphaned claim would
    // hold the key until its lease (LEASE_MS) ran out and every retry meanwhile read IN_PROGRESS.
    const claims = await Promise.all(slowed.map((p) => admin.hget(`${storePrefix()}{${APP_ID}:paid:${p.outerTradeNo}}`, 'a')))
    expect(claims.every((a) => Number(a) >= 2), `claims per payment: ${claims.join(',')}`).to.equal(true)
    admin.disconnect()
    for (const p of slowed) {
      const acknowledged = p.attempts[p.attempts.length - 1]
      expect(acknowledged.at, `${p.outerTradeNo} processed before an orphaned lease would have expired`).to.be.below(awake + 1500 - 100)
      expect(p.attempts.slice(0, -1).filter((a) => a.at > awake), 'retries after Redis woke that read IN_PROGRESS').to.deep.equal([])
    }
    note(`slow: first answers ${slowed.map((p) => Math.round(p.attempts[0].durationMs)).join('/')} ms; ` +
      `acknowledged after ${slowed.map((p) => p.attempts.length).join('/')} attempts, ` +
      `${slowed.map((p) => p.attempts[p.attempts.length - 1].at - p.createdAt).join('/')} ms; claims ${claims.join('/')}`)
  })

  it('RedisStore gives back a claim whose reply timed out, so the next claim gets the key at once', async () => {
    await server.start()
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 300 })
    client.on('error', () => undefined)
    const admin = server.admin()
    try {
      if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
      // A lease far longer than the test: only a give-back can free the key in time.
      const store = new RedisStore({ client, prefix: `${prefix}giveback:`, leaseMs: 60_000 })
      // Redis knows the claim script (else the late EVALSHA would only meet NOSCRIPT and do nothing).
      await store.claim('warm-up')
      const asleep = admin.call('DEBUG', 'SLEEP', '1')
      await sleep(50)
      const failure = await store.claim('k').then(() => null, (err: Error) => err)
      expect(failure?.message).to.match(/timed out/i)
      await asleep
      // Redis ran the late claim, then the RELEASE queued behind it on the same connection.
      expect(await store.claim('k')).to.deep.include({ status: 'claimed', attempt: 2 })
    } finally {
      client.disconnect()
      admin.disconnect()
    }
  })

  it('a Redis stall while a long onPaid runs: its lease keeps being renewed, a duplicate after the stall gets IN_PROGRESS', async () => {
    await server.start()
    // Lease 1500 ms, renewed every 500 ms by the router while onPaid works for 6 s.
    const s = await fleet('stall', { LEASE_MS: 1500, HANDLER_DELAY_MS: 6000 }, { notifyTimeoutMs: 30_000 })
    const payment = s.sendNotification({ notifyUrl: notifyUrl(), outerTradeNo: `L${run}`, totalAmount: '5.00' })
    const no = payment.outerTradeNo
    await waitFor('onPaid started', async () => (await startedCounts()).has(no), { timeoutMs: 10_000, everyMs: 10 })
    const t0 = Date.now()
    // Redis stalls 2 s from t0+1000: the renewal sent at t0+1500 times out (commandTimeout 1 s).
    await sleep(1000)
    const admin = server.admin()
    const asleep = admin.call('DEBUG', 'SLEEP', '2')
    await asleep
    // t0+3000: Redis is back. The handler still works until t0+6000; its lease must still be renewed.
    await sleep(Math.max(0, t0 + 5000 - Date.now()))
    const leaseLeft = await admin.pttl(`${storePrefix()}{${APP_ID}:paid:${no}}:lease`)
    const res = await fetch(notifyUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: encodeForm(signNotification(notificationFields(payment, s.appId), s.appSecret)),
    })
    const answer = { status: res.status, body: await res.text() }
    admin.disconnect()
    await s.waitForAcknowledged(no, 20_000)
    note(`stall: lease left at t0+5 s ${leaseLeft} ms; duplicate answered ${answer.status} ${answer.body}; ` +
      `onPaid started ${(await startedCounts()).get(no)} times`)
    expect(leaseLeft, 'lease still held at t0+5 s while onPaid runs').to.be.greaterThan(0)
    expect(answer).to.deep.equal({ status: 409, body: 'fail' })
    expect((await startedCounts()).get(no), 'onPaid starts').to.equal(1)
    expect((await paidCounts()).get(no), 'onPaid completions').to.equal(1)
  })

  it('an instance SIGKILLed inside onPaid: duplicates before its lease expires get fail (IN_PROGRESS) and run nothing; then another instance processes the payment once', async () => {
    await server.start()
    const s = await fleet('kill', { LEASE_MS: 1500, KILL_ON: 'K' }, {
      retrySchedule: [0, 300, 600, 1000, 1500, 2000, 3000, 3000, 3000, 3000],
      notifyTimeoutMs: 30_000,
    })
    const no = `K${run}`
    const payment = s.sendNotification({ notifyUrl: notifyUrl(), outerTradeNo: no, totalAmount: '88.00' })
    let victim: AppInstance | undefined
    await waitFor('an instance inside onPaid', () => {
      victim = apps.find((app) => app.lines.includes(`INSIDE_ONPAID ${no}`))
      return victim !== undefined
    }, { timeoutMs: 15_000, everyMs: 10 })

    const admin = server.admin()
    const [hashKey, leaseKey] = [`${storePrefix()}{${APP_ID}:paid:${no}}`, `${storePrefix()}{${APP_ID}:paid:${no}}:lease`]
    const fields = notificationFields(payment, s.appId)
    const duplicate = async () => {
      const res = await fetch(notifyUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: encodeForm(signNotification(fields, s.appSecret)),
      })
      return { status: res.status, body: await res.text(), instance: res.headers.get('x-instance') }
    }

    // A duplicate while the owner is alive and inside onPaid.
    expect(await duplicate()).to.include({ body: 'fail', status: 409 })

    await victim!.kill('SIGKILL')
    balancer.remove(victim!.name)
    const leaseLeft = await admin.pttl(leaseKey)
    expect(leaseLeft, 'lease still held after the kill').to.be.greaterThan(0)
    const leaseEnds = Date.now() + leaseLeft

    // A duplicate after the crash, before the lease expired: a survivor answers IN_PROGRESS.
    const afterKill = await duplicate()
    expect(afterKill).to.include({ body: 'fail', status: 409 })
    expect(afterKill.instance).to.not.equal(victim!.name)
    expect(await admin.pttl(leaseKey), 'the duplicate arrived before the lease expired').to.be.greaterThan(0)
    expect(apps.find((a) => a.name === afterKill.instance)!.rejections('IN_PROGRESS', no)).to.have.length.greaterThan(0)
    expect((await startedCounts()).get(no), 'onPaid starts so far').to.equal(1)
    expect((await paidCounts()).has(no)).to.equal(false)

    // The sandbox's retries: after the lease ran out, one of them takes over on a survivor.
    await s.waitForAcknowledged(no, 30_000)
    expect((await paidCounts()).get(no), 'onPaid completed').to.equal(1)
    expect((await startedCounts()).get(no), 'onPaid started: the killed one and the one that completed').to.equal(2)
    const by = await countRedis.hget(`${storePrefix()}count:by`, no)
    expect(by).to.not.equal(victim!.name)
    expect(await admin.hget(hashKey, 'a'), 'claims: the victim, then the survivor').to.equal('2')
    expect(await admin.hget(hashKey, 'd')).to.equal('1')
    admin.disconnect()

    const attempts = payment.attempts
    expect(attempts[0].status, 'the attempt cut by the kill').to.equal(502)
    expect(attempts.slice(0, -1).every((a) => a.body !== 'success')).to.equal(true)
    expect(attempts[attempts.length - 1].body).to.equal('success')
    const beforeExpiry = attempts.slice(1).filter((a) => a.at + a.durationMs < leaseEnds - 50)
    expect(beforeExpiry.every((a) => a.body === 'fail' && a.status === 409), 'retries before the lease expired').to.equal(true)
    expect(apps.every((app) => app === victim || app.alive)).to.equal(true)
    note(`kill: lease left after the kill ${leaseLeft} ms; attempts ${attempts.map((a) => a.status).join(',')}; completed by ${by}`)
  })
})
