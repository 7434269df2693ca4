/**
 * Issue 14: RedisStore and RedisTokenCache on a real Redis Cluster (3 primaries, 3 replicas, see
 * test/stores/redis-cluster.ts), through ioredis `Cluster` and node-redis `createCluster`: the
 * store conformance suite, the token cache suite, and WAIT for replicas.
 */
import { expect } from 'chai'
import type { Cluster } from 'ioredis'
import { RedisStore } from '../../src/stores/redis'
import { storeConformance } from '../../src/testing/conformance'
import type { RedisClientLike } from '../../src/stores/redis-adapter'
import { RedisCluster } from '../stores/redis-cluster'
import { keySlot, uniquePrefix, type NodeRedisClient, type RedisTarget } from '../stores/redis-helpers'
import { redisTokenCacheSuite } from '../stores/redis-token-cache-suite'

describe('Redis Cluster: stores (3 primaries, 3 replicas)', function () {
  let cluster: RedisCluster
  const prefix = uniquePrefix('cluster-store')

  before(async function () {
    this.timeout(120_000)
    cluster = await RedisCluster.start()
  })

  after(async () => {
    await cluster?.stop()
  })

  const clients: Array<{ name: string; connect: () => Promise<RedisClientLike & { destroy?: () => void; disconnect?: () => void }> }> = [
    { name: 'ioredis Cluster', connect: () => cluster.ioredis() },
    { name: 'node-redis createCluster', connect: () => cluster.nodeRedis() },
  ]

  for (const { name, connect } of clients) {
    describe(`RedisStore with ${name}`, () => {
      let client: Awaited<ReturnType<typeof connect>>
      const p = `${prefix}${name.split(' ')[0]}:`

      before(async () => {
        client = await connect()
      })

      after(() => {
        if (client?.destroy) client.destroy()
        else client?.disconnect?.()
      })

      storeConformance(`RedisStore (${name})`, (opts) => new RedisStore({ client, prefix: p, ...opts }))

      it('spreads notifications over all three primaries, each with its hash and lease on one node', async () => {
        const store = new RedisStore({ client, prefix: `${p}spread:` })
        const primaries = await cluster.primaries()
        const onPrimary = new Map<number, number>()
        for (let i = 0; i < 60; i++) {
          const key = `20110698:paid:S${i}`
          const r = await store.claim(key)
          expect(r.status, key).to.equal('claimed')
          const [hash, lease] = store.keysOf(key)
          expect(keySlot(lease)).to.equal(keySlot(hash))
          const port = primaries.find((n) => n.slots.some(([a, b]) => keySlot(hash) >= a && keySlot(hash) <= b))!.port
          onPrimary.set(port, (onPrimary.get(port) ?? 0) + 1)
          expect(await store.complete(key, (r as { owner: string }).owner), key).to.equal(true)
        }
        expect([...onPrimary.keys()].sort(), 'primaries that served a claim').to.deep.equal(primaries.map((n) => n.port).sort())
      })

      it('waitReplicas: 1 on a healthy cluster: complete resolves true, and the replica holds the done-marker', async () => {
        const store = new RedisStore({ client, prefix: `${p}wait:`, waitReplicas: 1, waitTimeoutMs: 2000 })
        for (let i = 0; i < 10; i++) {
          const key = `20110698:paid:W${i}`
          const r = await store.claim(key)
          if (r.status !== 'claimed') throw new Error(`expected claimed, got ${r.status}`)
          expect(await store.complete(key, r.owner)).to.equal(true)
          const [hash] = store.keysOf(key)
          const { replicas } = await cluster.shardOfSlot(keySlot(hash))
          expect(replicas).to.have.length(1)
          expect(await cluster.readOnReplica(replicas[0].port, hash), `${key} on replica ${replicas[0].port}`).to.deep.equal({ a: '1', d: '1' })
        }
      })
    })
  }

  const target: RedisTarget = {
    name: 'Redis Cluster',
    ioredis: () => cluster.ioredis() as Promise<Cluster>,
    nodeRedis: () => cluster.nodeRedis() as Promise<NodeRedisClient>,
  }
  redisTokenCacheSuite(target)
})
