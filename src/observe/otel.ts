import { createRequire } from 'node:module'
import type * as OtelApi from '@opentelemetry/api'

export type Otel = typeof OtelApi

let loaded: Otel | null | undefined

/**
 * `@opentelemetry/api` when the app has it installed, else null. It is an optional peer
 * dependency, so it is required on first use instead of imported: a static import would stop
 * the package from loading without it. Whichever copy is found, providers the app registered are
 * seen: the API keeps them on a process-wide global shared by its ESM and CommonJS builds.
 */
export function otel(): Otel | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@opentelemetry/api') as Otel
    } catch {
      // Not installed (or broken): payments must work the same, only unobserved.
      loaded = null
    }
  }
  return loaded
}
