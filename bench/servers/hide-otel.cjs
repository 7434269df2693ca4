// Preloaded with --require: @opentelemetry/* cannot be resolved, as in an app that does not
// have the optional peer installed. The package requires the API at run time (src/observe/otel.ts).
const Module = require('node:module')

const resolve = Module._resolveFilename
Module._resolveFilename = function hideOpenTelemetry(request, ...rest) {
  if (typeof request === 'string' && request.startsWith('@opentelemetry/')) {
    const error = new Error(`Cannot find module '${request}' (hidden by bench/servers/hide-otel.cjs)`)
    error.code = 'MODULE_NOT_FOUND'
    throw error
  }
  return resolve.call(this, request, ...rest)
}
