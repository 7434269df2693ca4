import type { ClusterOptions } from 'ioredis'

/**
 * The ioredis Cluster settings docs/redis-cluster.md recommends, used by the cluster tests and the
 * fleet's app processes: fail fast, let Guanaitong retry. Its own module so an app process loads
 * nothing else of the test helpers.
 */
export const IOREDIS_CLUSTER_OPTIONS: ClusterOptions = {
  enableOfflineQueue: false,
  // A node that went away: refresh the slot map and retry, every 200 ms, for the redirections allowed.
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 50,
  slotsRefreshTimeout: 1000,
  slotsRefreshInterval: 2000,
  redisOptions: { connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 1 },
}
