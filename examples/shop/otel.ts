/**
 * `OTEL=1 npm start`: the shop with OpenTelemetry, set up the way docs/observability.md shows.
 * Metrics are served by the shop itself at GET /metrics (Prometheus text format); spans are
 * printed with OTEL_TRACES=console (a real app exports them, e.g. over OTLP).
 */
import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { BatchSpanProcessor, ConsoleSpanExporter } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import type { RequestHandler } from 'express'

export interface Telemetry {
  /** GET /metrics for Prometheus to scrape. */
  metrics: RequestHandler
  shutdown(): Promise<void>
}

/** Registers the SDK globally. Call it before the first request; the router finds it by itself. */
export function startTelemetry(): Telemetry {
  // No server of its own: the shop serves /metrics on its port.
  const prometheus = new PrometheusExporter({ preventServerStart: true })
  const meterProvider = new MeterProvider({ readers: [prometheus] })
  metrics.setGlobalMeterProvider(meterProvider)

  const spanProcessors = process.env.OTEL_TRACES === 'console' ? [new BatchSpanProcessor(new ConsoleSpanExporter())] : []
  const tracerProvider = new NodeTracerProvider({ spanProcessors })
  // Also installs the AsyncLocalStorage context manager, so spans nest across awaits.
  tracerProvider.register()

  return {
    metrics: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()])
    },
  }
}
