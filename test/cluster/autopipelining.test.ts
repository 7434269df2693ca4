/**
 * Issue 20: what ioredis `enableAutoPipelining` does with RedisStore on a Redis Cluster. ioredis
 * (5.9) groups auto-pipelined commands by the slot of their first argument, which for EVALSHA is
 * the script's SHA: scripts on keys of different slots share a pipeline, and ioredis refuses it.
 * The store therefore refuses such a client at construction, rather than fail every settlement.
 */
import { expect } from 'chai'
import type { Cluster } from 'ioredis'
import { ConfigError } from '../../src/kernel/errors'
import { RedisStore } from '../../src/stores/redis'
import { RedisTokenCache } from '../../src/stores/redis-token-cache'
import { RedisCluster } from '../stores/redis-cluster'
import { countSocketWrites, type CountedSocket, settlingOn, uniquePrefix } from '../stores/redis-helpers'

describe('Redis Cluster: ioredis enableAutoPipelining', function () {
  let cluster: RedisCluster
  const prefix = uniquePrefix('cluster-autopipe')
  before(async function () {
    this.timeout(120_000)
    cluster = await RedisCluster.start()
  })
  after(async () => { await cluster?.stop() })

  it('ioredis itself fails concurrent EVALSHAs on keys of different slots (if this starts passing, ioredis fixed it)', async () => {
    const client = await cluster.ioredis({ enableAutoPipelining: true })
    try {
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) =>
        client.evalsha('e0e1f9fabfc9d4800c877a703b823ac0578ff8db', 1, `${prefix}{k${i}}`)))
      const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))
      expect(messages.filter((m) => /same slots allocation group/.test(m)).length).to.be.at.least(1, messages.join('; '))
    } finally {
      client.disconnect()
    }
  })

  it('RedisStore and RedisTokenCache refuse such a client with a ConfigError that says what to change', async () => {
    const client = await cluster.ioredis({ enableAutoPipelining: true })
    try {
      expect(() => new RedisStore({ client, prefix })).to.throw(ConfigError, /enableAutoPipelining/)
      expect(() => new RedisTokenCache({ client, prefix })).to.throw(ConfigError, /enableAutoPipelining/)
    } finally {
      client.disconnect()
    }
  })

  it('without it, RedisStore writes the commands of one event-loop turn in one write per node, and settles as before', async () => {
    const client = await cluster.ioredis()
    const sockets = (c: Cluster) => c.nodes('all').map((node) => (node as unknown as { stream: CountedSocket }).stream)
    let writes: ReturnType<typeof countSocketWrites> | undefined
    try {
      const run = settlingOn(new RedisStore({ client, prefix: `${prefix}turn:` }), 'CT')
      // Warm: every script cached on every primary, every node connected.
      await Promise.all(Array.from({ length: 30 }, (_, i) => run(1000 + i)))
      writes = countSocketWrites(sockets(client))
      const fresh = await Promise.all(Array.from({ length: 30 }, (_, i) => run(i)))
      expect(fresh.every((o) => o.answer === 'success' && o.how === 'settled')).to.equal(true)
      // 60 scripts over three primaries: the claims in one write each, the completes in a few.
      expect(writes.count(), 'socket writes for 60 scripts').to.be.at.most(20)
      const dups = await Promise.all(Array.from({ length: 30 }, (_, i) => run(i)))
      expect(dups.every((o) => o.answer === 'success' && o.how === 'duplicate')).to.equal(true)
      await new Promise((resolve) => setImmediate(resolve))
      expect(sockets(client).map((socket) => socket.writableCorked)).to.satisfy((corked: number[]) => corked.every((n) => n === 0))
    } finally {
      writes?.restore()
      client.disconnect()
    }
  })
})
