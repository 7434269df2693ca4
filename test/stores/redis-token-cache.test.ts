import { expect } from 'chai'
import { ConfigError } from '../../src/kernel/errors'
import { RedisTokenCache } from '../../src/stores/redis-token-cache'
import { SINGLE_REDIS } from './redis-helpers'
import { redisTokenCacheSuite } from './redis-token-cache-suite'

redisTokenCacheSuite(SINGLE_REDIS)

describe('RedisTokenCache options', () => {
  it('validates its options', () => {
    const fake = { evalsha: async () => 1, eval: async () => 1 }
    const c = new RedisTokenCache({ client: fake })
    expect(c.prefix).to.equal('gat:token:')
    expect(c.lockMs).to.equal(10_000)
    expect(c.waitMs).to.equal(15_000)
    expect(() => new RedisTokenCache({ client: fake, lockMs: 0 })).to.throw(ConfigError, /lockMs/)
    expect(() => new RedisTokenCache({ client: fake, waitMs: -1 })).to.throw(ConfigError, /waitMs/)
    expect(() => new RedisTokenCache({ client: undefined as never })).to.throw(ConfigError, /client is required/)
  })
})
