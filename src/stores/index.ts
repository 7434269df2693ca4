export { MemoryStore } from './memory'
export { RedisStore } from './redis'
export { RedisTokenCache } from './redis-token-cache'
