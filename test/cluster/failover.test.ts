/**
 * Issue 14: a primary of a real Redis Cluster SIGKILLed and its replica promoted, seen through
 * RedisStore. What replicated survives (a lease still holds its key, until leaseMs after its
 * claim and no longer); what had not replicated is gone (a claim, a done-marker), and
 * `waitReplicas` is how the store finds out in time. Replication lag is made deterministic with
 * `cutReplication` (test/stores/redis-cluster.ts) instead of hoping to kill inside the lag.
 */
import { expect } from 'chai'
import { cpus, loadavg } from 'node:os'
import { GuanaitongError } from '../../src/kernel/errors'
import { RedisStore } from '../../src/stores/redis'
import type { ClaimResult } from '../../src/kernel/types'
import type { RedisClientLike } from '../../src/stores/redis-adapter'
import { RedisCluster, type ClusterNodeInfo } from '../stores/redis-cluster'
import { keySlot, uniquePrefix } from '../stores/redis-helpers'
import { sleep } from '../helpers'

const LEASE_MS = 8000

type Client = RedisClientLike & { destroy?: () => void; disconnect?: () => void }

function close(client: Client | undefined): void {
  if (client?.destroy) client.destroy()
  else client?.disconnect?.()
}

function owned(r: ClaimResult, label: string): string {
  if (r.status !== 'claimed') throw new Error(`${label}: expected claimed, got ${JSON.stringify(r)}`)
  return r.owner
}

/** Notification keys whose RedisStore keys live on `primary`, one per label. */
function keysOn(store: RedisStore, primary: ClusterNodeInfo, labels: string[]): Record<string, string> {
  const run = Date.now().toString(36)
  const keys: Record<string, string> = {}
  let i = 0
  for (const label of labels) {
    for (;;) {
      const key = `20110698:paid:${label}${run}${i++}`
      const slot = keySlot(store.keysOf(key)[0])
      if (primary.slots.some(([a, b]) => slot >= a && slot <= b)) {
        keys[label] = key
        break
      }
    }
  }
  return keys
}

/** Waits until a replica holds `key`. */
async function reachedReplica(cluster: RedisCluster, port: number, key: string): Promise<void> {
  const until = Date.now() + 5000
  while (await cluster.onNode(port, (r) => r.exists(key)) !== 1) {
    if (Date.now() > until) throw new Error(`${key} never reached the replica on ${port}`)
    await sleep(20)
  }
}

describe('Redis Cluster: a primary SIGKILLed, its replica promoted', function () {
  this.timeout(120_000)
  let cluster: RedisCluster
  const prefix = uniquePrefix('cluster-failover')
  const note = (line: string) => console.log(`      ${line}`)

  before(async function () {
    this.timeout(120_000)
    cluster = await RedisCluster.start()
  })

  after(async () => {
    await cluster?.stop()
  })

  const clients: Array<{ name: string; connect: () => Promise<Client> }> = [
    { name: 'ioredis Cluster', connect: () => cluster.ioredis() },
    { name: 'node-redis v6 createCluster (topology refresh 1 s after a reconnect)', connect: () => cluster.nodeRedis({ version: 6 }) },
  ]

  for (const { name, connect } of clients) {
    it(`${name}: a replicated lease holds its key until leaseMs after its claim, no longer; a claim and a done-marker that had not replicated are gone, and waitReplicas reported it`, async () => {
      const client = await connect()
      try {
        const p = `${prefix}${name.split(' ')[0]}:`
        const store = new RedisStore({ client, prefix: p, leaseMs: LEASE_MS })
        const waiting = new RedisStore({ client, prefix: p, leaseMs: LEASE_MS, waitReplicas: 1, waitTimeoutMs: 300 })
        const [victim] = await cluster.primaries()
        const { replicas: [heir] } = await cluster.shardOfSlot(victim.slots[0][0])
        const k = keysOn(store, victim, ['held', 'lostClaim', 'lostDone', 'waited'])

        // A claim that reached the replica: its lease must survive the failover.
        const heldAt = Date.now()
        owned(await store.claim(k.held), k.held)
        const [, heldLease] = store.keysOf(k.held)
        await reachedReplica(cluster, heir.port, heldLease)

        // Writes after replication stopped: on the primary only.
        await cluster.cutReplication(heir.port, victim.port)
        const lostClaimAt = Date.now()
        const lostClaimOwner = owned(await store.claim(k.lostClaim), k.lostClaim)
        expect(await store.complete(k.lostDone, owned(await store.claim(k.lostDone), k.lostDone))).to.equal(true)
        let waitError: unknown
        try {
          await waiting.complete(k.waited, owned(await waiting.claim(k.waited), k.waited))
        } catch (err) {
          waitError = err
        }
        expect(waitError, 'complete with waitReplicas: 1 while no replica acknowledges').to.be.instanceOf(GuanaitongError)
        expect((waitError as GuanaitongError).code).to.equal('STORE_NOT_REPLICATED')
        expect((waitError as Error).message).to.match(/reached 0 of 1 replica\(s\) within 300 ms/)
        expect(await store.claim(k.waited), 'the marker is on the primary').to.include({ status: 'done' })
        expect(await store.claim(k.lostDone)).to.include({ status: 'done' })

        const killedAt = Date.now()
        await cluster.kill(victim.port)

        // Until the replica takes over, the shard's calls fail; then the lease answers busy.
        let restoredAt = 0
        let errors = 0
        let first: ClaimResult | undefined
        while (!first) {
          try {
            first = await store.claim(k.held)
            restoredAt = Date.now()
          } catch {
            errors++
            if (Date.now() - killedAt > LEASE_MS) throw new Error(`${name}: the shard did not come back within ${LEASE_MS} ms of the kill`)
            await sleep(100)
          }
        }
        expect(first, 'the replicated lease still holds the key after the failover').to.deep.equal({ status: 'busy' })
        // The lease keeps its absolute deadline on the promoted replica.
        const leftMs = await cluster.onNode(heir.port, (r) => r.pttl(heldLease))
        expect(leftMs, 'lease left on the promoted replica').to.be.within(LEASE_MS - (Date.now() - heldAt) - 500, LEASE_MS - (restoredAt - heldAt) + 100)

        // What had not replicated is gone, at once (well before the lost claim's lease would end).
        expect(Date.now() - lostClaimAt).to.be.below(LEASE_MS)
        const taker = owned(await store.claim(k.lostClaim), `${k.lostClaim} after the failover`)
        expect(await store.complete(k.lostClaim, lostClaimOwner), 'the lost claim\'s owner can no longer complete').to.equal(false)
        expect(await store.complete(k.lostClaim, taker)).to.equal(true)
        owned(await store.claim(k.lostDone), `${k.lostDone}: its done-marker was lost, a duplicate now runs the handler again`)
        owned(await store.claim(k.waited), `${k.waited}: lost as well, but complete() had rejected`)

        // The key held by the replicated lease frees up when that lease ends, not later.
        let takeoverAt = 0
        for (;;) {
          const r = await store.claim(k.held)
          if (r.status === 'claimed') {
            takeoverAt = Date.now()
            break
          }
          expect(r.status).to.equal('busy')
          if (Date.now() - heldAt > LEASE_MS + 5000) throw new Error('the lease outlived leaseMs by 5 s')
          await sleep(50)
        }
        const blockedMs = takeoverAt - heldAt
        note(`${name}: failover ${restoredAt - killedAt} ms (${errors} failed claims meanwhile); lease left after it ${leftMs} ms; ` +
          `key held ${blockedMs} ms for a ${LEASE_MS} ms lease; load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`)
        expect(blockedMs, 'how long the replicated lease blocked its key').to.be.within(LEASE_MS - 100, LEASE_MS + 1000)
      } finally {
        close(client)
        await restore()
      }
    })
  }

  /** After a test: undo the cut, bring the killed node back (as a replica), wait for a healthy cluster. */
  async function restore(): Promise<void> {
    for (const port of cluster.runningPorts) await cluster.healReplication(port)
    for (const port of cluster.ports) if (!cluster.runningPorts.includes(port)) await cluster.restart(port)
    await cluster.waitHealthy()
  }

  it('node-redis v5 createCluster does not follow a failover: the shard keeps failing until the dead address answers again', async () => {
    const client = await cluster.nodeRedis({ version: 5 })
    try {
      const store = new RedisStore({ client, prefix: `${prefix}v5:` })
      const [victim] = await cluster.primaries()
      const { replicas: [heir] } = await cluster.shardOfSlot(victim.slots[0][0])
      const { key } = keysOn(store, victim, ['key'])
      owned(await store.claim(key), key)
      await reachedReplica(cluster, heir.port, store.keysOf(key)[1])
      const killedAt = Date.now()
      await cluster.kill(victim.port)
      await cluster.waitHealthy(30_000)
      const promotedAfter = Date.now() - killedAt
      // Every node now says the replica serves the slot; this client still asks the dead one.
      const failures: string[] = []
      const watchUntil = Date.now() + 3000
      while (Date.now() < watchUntil) {
        try {
          await store.claim(key)
          failures.push('answered')
        } catch (err) {
          failures.push((err as Error).message)
        }
        await sleep(200)
      }
      note(`node-redis v5: replica promoted after ${promotedAfter} ms; the next 3 s: ${failures.length} claims, all failed: ${[...new Set(failures)].join('; ')}`)
      expect(failures.filter((f) => f === 'answered'), 'claims answered after the promotion').to.deep.equal([])
      // The old primary returns (as a replica): it answers MOVED, and the client rediscovers.
      await cluster.restart(victim.port)
      expect(await store.claim(key)).to.deep.equal({ status: 'busy' })
    } finally {
      close(client)
      await restore()
    }
  })
})
