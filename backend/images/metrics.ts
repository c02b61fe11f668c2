/** The image service's Prometheus metrics, next to the runtime's own in the same registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface ImageMetrics {
  /** `outcome` is `ok` or the error code. */
  transforms: Counter<'outcome'>
  /** Seconds per stage: `queue` (waiting for a slot), `fetch`, `transform`, `total`. */
  duration: Histogram<'stage'>
  /** `result`: an OriginCacheResult. */
  originCache: Counter<'result'>
  originFetchedBytes: Counter
  outputBytes: Counter<'format'>
  /** Requests dropped at the edge's deadline, by `stage`: queue (never started), fetch, transform. */
  deadlineExceeded: Counter<'stage'>
}

export function createImageMetrics(
  registry: Registry,
  live: { queued(): number; running(): number; originCacheBytes(): number }
): ImageMetrics {
  const registers = [registry]
  new Gauge({
    name: 'images_queue_depth',
    help: 'Requests admitted and not transforming yet (fetching their source or waiting for a slot)',
    registers,
    collect() {
      this.set(live.queued())
    },
  })
  new Gauge({
    name: 'images_transforms_in_flight',
    help: 'Transforms running now',
    registers,
    collect() {
      this.set(live.running())
    },
  })
  new Gauge({
    name: 'images_origin_cache_bytes',
    help: 'Bytes of source images held in the origin cache',
    registers,
    collect() {
      this.set(live.originCacheBytes())
    },
  })
  return {
    transforms: new Counter({
      name: 'images_transforms_total',
      help: 'Transform requests answered, by outcome (ok or the error code)',
      labelNames: ['outcome'],
      registers,
    }),
    duration: new Histogram({
      name: 'images_duration_seconds',
      help: 'Time per stage of a transform request: queue, fetch, transform, total',
      labelNames: ['stage'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    originCache: new Counter({
      name: 'images_origin_cache_requests_total',
      help: 'Source lookups in the origin cache: hit, miss (fetched), collapsed (joined a fetch in progress)',
      labelNames: ['result'],
      registers,
    }),
    originFetchedBytes: new Counter({
      name: 'images_origin_fetched_bytes_total',
      help: 'Bytes of source images fetched from origins',
      registers,
    }),
    outputBytes: new Counter({
      name: 'images_output_bytes_total',
      help: 'Bytes of transformed images sent, by format',
      labelNames: ['format'],
      registers,
    }),
    deadlineExceeded: new Counter({
      name: 'images_deadline_exceeded_total',
      help: 'Requests dropped because the edge stopped waiting: queue (never started), fetch, transform',
      labelNames: ['stage'],
      registers,
    }),
  }
}
