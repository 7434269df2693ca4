/**
 * Issue 20: what ioredis `enableAutoPipelining` does with RedisStore on a Redis Cluster. ioredis
 * (5.9) groups auto-pipelined commands by the slot of their first argument, which for EVALSHA is
 * the script's SHA: scripts on keys of different slots share a pipeline, and ioredis refuses it.
 * The store therefore refuses such a client at construction, rather than fail every settlement.
 */
import { expect } from 'chai'
import { ConfigError } from '../../src/kernel/errors'
import { RedisStore } from '../../src/stores/redis'
import { RedisTokenCache } from '../../src/stores/redis-token-cache'
import { RedisCluster } from '../stores/redis-cluster'
import { uniquePrefix } from '../stores/redis-helpers'

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
})
