/**
 * Issue 15 part 2 across real processes: three shop instances behind a random balancer, one
 * Redis, each sweeping the shared unsettled ledger on its own timer.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createSandbox, type Sandbox } from '../../src/testing/sandbox'
import { PAY_PATH } from '../../src/testing/sandbox/http'
import { notificationFields } from '../../src/testing/sandbox/payments'
import { deleteKeys, REDIS_URL, uniquePrefix } from '../stores/redis-helpers'
import { sleep, waitFor } from '../helpers'
import { Balancer } from './balancer'
import { counts, killAll, startFleet, type AppInstance } from './fleet-helpers'

const PAYS = 20
const UNSETTLED_AFTER_MS = 4000
const SWEEP_EVERY_MS = 100

describe('fleet: unsettled pays swept by three instances at once', function () {
  this.timeout(120_000)
  const prefix = uniquePrefix('fleet-unsettled')
  const run = Date.now().toString(36).slice(-6)
  let redis: Redis
  let balancer: Balancer
  let sandbox: Sandbox
  let apps: AppInstance[] = []

  before(async () => {
    redis = new Redis(REDIS_URL)
    balancer = new Balancer()
    await balancer.start()
    sandbox = createSandbox({ timeScale: 0.0005 })
    await sandbox.start()
    apps = await startFleet(3, {
      SANDBOX_URL: sandbox.url,
      NOTIFY_URL: `${balancer.url}/gat/notify`,
      PREFIX: prefix,
      PAY_TIMEOUT_MS: 500,
      UNSETTLED_AFTER_MS,
      SWEEP_EVERY_MS,
    })
    for (const app of apps) balancer.add(app.name, app.port)
  })

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const app of apps) process.stderr.write(`--- ${app.name} stdout:\n${app.lines.slice(-40).join('\n')}\nstderr:\n${app.errorOutput}\n`)
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

  it(`${PAYS} hung pays, half notified late: each of the others reported exactly once by one of the three sweeping instances; the notified never`, async () => {
    sandbox.setNotifications('off')
    sandbox.hang({ path: PAY_PATH, processed: true, times: PAYS })
    const nos = Array.from({ length: PAYS }, (_, i) => `U${run}${i}`)
    const answered: number[] = []
    // One after the other, 40 ms apart: deadlines spread over several sweeps of every instance.
    const statuses = await Promise.all(nos.map(async (no, i) => {
      await sleep(i * 40)
      const res = await fetch(`${balancer.url}/gat/pay`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ outer_trade_no: no, reason: '午餐' }),
      })
      answered.push(Date.now())
      return res.status
    }))
    expect(statuses).to.deep.equal(nos.map(() => 504))
    const ledger = `${prefix}{unsettled}:due`
    expect(await redis.zcard(ledger), 'recorded before answering').to.equal(PAYS)

    const late = nos.filter((_, i) => i % 2 === 0)
    const open = nos.filter((_, i) => i % 2 === 1)
    const deliveries = late.map((no) => sandbox.notify(`${balancer.url}/gat/notify`, notificationFields(sandbox.getPayment(no)!, sandbox.appId)))
    for (const d of deliveries) expect((await sandbox.waitForDelivery(d, undefined, 20_000)).state).to.equal('acknowledged')
    expect(Date.now(), 'late notifications all settled before the first deadline').to.be.below(Math.min(...answered) + UNSETTLED_AFTER_MS)

    const reportedKey = `${prefix}count:unsettled`
    await waitFor('every open pay reported', async () => (await redis.hlen(reportedKey)) >= open.length, { timeoutMs: 30_000 })
    await sleep(10 * SWEEP_EVERY_MS) // more sweeps on every instance: nothing is reported twice
    const reported = await counts(redis, reportedKey)
    expect([...reported.keys()].sort()).to.deep.equal([...open].sort())
    expect([...reported.entries()].filter(([, n]) => n !== 1), 'reported more than once').to.deep.equal([])
    // Which instance reports is not asserted: the three sweep timers start within milliseconds of
    // each other, so one instance often reaches every record first (seen: 9/1, 7/3, 6/4 and once
    // 10/0 in four runs). Three instances did sweep the same ledger; exactly-once is asserted above.
    const by = new Set(Object.values(await redis.hgetall(`${prefix}count:unsettled-by`)))
    expect(await redis.zcard(ledger), 'the ledger is empty').to.equal(0)
    expect(apps.every((app) => app.alive)).to.equal(true)
    console.log(`      reported by ${JSON.stringify(Object.fromEntries([...by].map((name) => [name, apps.find((a) => a.name === name)!.lines.filter((l) => l.startsWith('UNSETTLED ')).length])))}`)
  })
})
