export { MemoryStore } from './memory'
export { RedisStore, type RedisStoreOptions } from './redis'
export { RedisTokenCache, type RedisTokenCacheOptions } from './redis-token-cache'
export type { RedisClientLike } from './redis-adapter'
