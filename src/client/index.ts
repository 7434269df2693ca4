export { createClient } from './client'
export { MemoryTokenCache } from './token'
