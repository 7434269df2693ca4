/**
 * GitHub issue 3: several instances, one Redis. Three shop processes behind a random load
 * balancer share the machine's Redis (a unique prefix); the sandbox plays Guanaitong.
 */
import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { notificationFields } from '../../src/testing/sandbox/payments'
import { deleteKeys, REDIS_URL, uniquePrefix } from '../stores/redis-helpers'
import { Balancer } from './balancer'
import { counts, killAll, startFleet, type AppInstance } from './fleet-helpers'

const PAYMENTS = 500
const PAYS = 100

describe('fleet: three instances behind a random balancer, one Redis', function () {
  this.timeout(120_000)
  const prefix = uniquePrefix('fleet')
  const run = Date.now().toString(36).slice(-6)
  let redis: Redis
  let balancer: Balancer
  let sandbox: Sandbox | undefined
  let apps: AppInstance[] = []

  before(async () => {
    redis = new Redis(REDIS_URL)
    balancer = new Balancer()
    await balancer.start()
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const app of apps) process.stderr.write(`--- ${app.name} stderr:\n${app.errorOutput}\n`)
    }
  })

  after(async () => {
    await killAll()
    await balancer?.close()
    await sandbox?.close()
    if (redis) {
      await deleteKeys(redis, prefix)
      await redis.quit()
    }
  })

  async function fleet(label: string, env: Partial<Parameters<typeof startFleet>[1]>): Promise<void> {
    for (const app of apps) balancer.remove(app.name)
    await killAll()
    await sandbox?.close()
    // A secret of this fleet's own: a delivery still retried by a sandbox of another test (or of a
    // test run beside this one), whose balancer's port this one reuses, fails the sign check here
    // instead of counting as one of this test's payments.
    const appSecret = `fleet-${randomBytes(8).toString('hex')}`
    sandbox = createSandbox({ timeScale: 0.0005, notifyTimeoutMs: 15_000, appSecret })
    await sandbox.start()
    apps = await startFleet(3, {
      APP_SECRET: appSecret,
      SANDBOX_URL: sandbox.url,
      NOTIFY_URL: `${balancer.url}/gat/notify`,
      PREFIX: `${prefix}${label}:`,
      ...env,
    })
    for (const app of apps) balancer.add(app.name, app.port)
  }

  it(`${PAYMENTS} payments, each delivered 3 to 5 times at once to random instances: onPaid ran exactly once per payment, all acknowledged`, async () => {
    await fleet('notify', { LEASE_MS: 5000, HANDLER_DELAY_MS: 20 })
    const s = sandbox!
    const notifyUrl = `${balancer.url}/gat/notify`
    const started = performance.now()
    let deliveries = 0
    for (let i = 0; i < PAYMENTS; i++) {
      const payment = s.sendNotification({ notifyUrl, outerTradeNo: `F${run}${i}`, totalAmount: `${1 + (i % 50)}.00` })
      const fields = notificationFields(payment, s.appId)
      const duplicates = 2 + (i % 3)
      for (let k = 0; k < duplicates; k++) s.notify(notifyUrl, fields)
      deliveries += 1 + duplicates
    }
    await s.waitIdle(90_000)
    const seconds = (performance.now() - started) / 1000

    const paid = await counts(redis, `${prefix}notify:count:paid`)
    const begun = await counts(redis, `${prefix}notify:count:started`)
    expect(paid.size, 'payments whose onPaid completed').to.equal(PAYMENTS)
    expect([...paid.entries()].filter(([, n]) => n !== 1), 'onPaid completed more than once').to.deep.equal([])
    expect([...begun.entries()].filter(([, n]) => n !== 1), 'onPaid started more than once').to.deep.equal([])

    expect(s.deliveries).to.have.length(deliveries)
    const states = new Map<string, number>()
    for (const d of s.deliveries) states.set(d.state, (states.get(d.state) ?? 0) + 1)
    expect(Object.fromEntries(states), 'delivery states (none abandoned)').to.deep.equal({ acknowledged: deliveries })
    expect(s.payments.filter((p) => p.state !== 'acknowledged').map((p) => p.outerTradeNo)).to.deep.equal([])

    // Copies really landed on different instances and collided.
    const by = await redis.hgetall(`${prefix}notify:count:by`)
    const perInstance = new Map<string, number>()
    for (const name of Object.values(by)) perInstance.set(name, (perInstance.get(name) ?? 0) + 1)
    expect([...perInstance.keys()].sort(), 'instances that ran onPaid').to.deep.equal(['app1', 'app2', 'app3'])
    const inProgress = apps.reduce((sum, app) => sum + app.rejections('IN_PROGRESS').length, 0)
    expect(inProgress, 'duplicates answered fail while another instance held the claim').to.be.greaterThan(0)
    expect(apps.every((app) => app.alive)).to.equal(true)
    const attempts = s.deliveries.reduce((sum, d) => sum + d.attempts.length, 0)
    console.log(`      ${PAYMENTS} payments, ${deliveries} deliveries, ${attempts} attempts in ${seconds.toFixed(1)} s; ` +
      `onPaid per instance ${JSON.stringify(Object.fromEntries(perInstance))}; IN_PROGRESS answers ${inProgress}; ` +
      `balancer ${JSON.stringify(balancer.live().map((b) => [b.name, b.forwarded]))}`)
  })

  it(`cold start: ${PAYS} concurrent pays spread over the instances create one access token`, async () => {
    await fleet('pay', { LEASE_MS: 5000 })
    const s = sandbox!
    const answers = await Promise.all(Array.from({ length: PAYS }, async (_, i) => {
      const res = await fetch(`${balancer.url}/gat/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ outer_trade_no: `P${run}${i}`, reason: '午餐' }),
      })
      return { status: res.status, instance: res.headers.get('x-instance'), body: await res.json() as { trade_no?: string } }
    }))
    expect(answers.filter((a) => a.status !== 200), 'pays not answered 200').to.deep.equal([])
    expect(new Set(answers.map((a) => a.instance)), 'instances that served pays').to.have.keys('app1', 'app2', 'app3')
    expect(s.stats.tokenCalls, 'token creations across the fleet').to.equal(1)
    expect(s.stats.paymentsCreated).to.equal(PAYS)

    // Their notifications come back through the balancer: each processed once.
    await s.waitIdle(30_000)
    expect(s.payments.filter((p) => p.state !== 'acknowledged')).to.deep.equal([])
    const paid = await counts(redis, `${prefix}pay:count:paid`)
    expect(paid.size).to.equal(PAYS)
    expect([...paid.values()].every((n) => n === 1)).to.equal(true)
  })

  it(`${PAYS} pays through the balancer, each raced by 2 more copies of its notification: onPaid once each, from either channel`, async () => {
    await fleet('race', { LEASE_MS: 5000, HANDLER_DELAY_MS: 30 })
    const s = sandbox!
    const notifyUrl = `${balancer.url}/gat/notify`
    s.on('pay', ({ payment }) => {
      const fields = notificationFields(payment, s.appId)
      for (let k = 0; k < 2; k++) s.notify(notifyUrl, fields)
    })
    const answers = await Promise.all(Array.from({ length: PAYS }, async (_, i) => {
      const res = await fetch(`${balancer.url}/gat/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ outer_trade_no: `R${run}${i}`, reason: '午餐' }),
      })
      return { status: res.status, body: await res.json() as { settled?: boolean } }
    }))
    expect(answers.filter((a) => a.status !== 200), 'pays not answered 200').to.deep.equal([])
    await s.waitIdle(60_000)
    expect(s.deliveries.filter((d) => d.state !== 'acknowledged').map((d) => d.id), 'deliveries not acknowledged').to.deep.equal([])
    const orders = Array.from({ length: PAYS }, (_, i) => `R${run}${i}`)
    const paid = await counts(redis, `${prefix}race:count:paid`)
    expect(orders.filter((no) => paid.get(no) !== 1), 'these pays\' onPaid did not complete exactly once').to.deep.equal([])
    const bySourceAll = await redis.hgetall(`${prefix}race:count:source`)
    const sources = orders.map((no) => bySourceAll[no])
    const bySource = { pay: sources.filter((x) => x === 'pay').length, notify: sources.filter((x) => x === 'notify').length }
    const settledOnAnswer = answers.filter((a) => a.body.settled === true).length
    console.log(`      race: ${PAYS} pays, ${PAYS * 3} notifications; settled by pay ${bySource.pay}, by notify ${bySource.notify}; ` +
      `answers settled: true ${settledOnAnswer}`)
    expect(bySource.pay + bySource.notify).to.equal(PAYS)
  })
})
