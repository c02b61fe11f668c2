/**
 * The image service's configuration (environment), on top of what every service reads.
 * Defaults are for production; tests shorten the timeouts.
 */
import { z } from 'zod'
import { regionIdSchema } from '#shared/catalogue.ts'
import { baseConfigSchema } from '../runtime/config.ts'
import { parseAllowlist } from '../outbound/allowlist.ts'

const MiB = 1024 * 1024
const positiveInt = () => z.coerce.number().int().positive()

export const imagesConfigSchema = baseConfigSchema.extend({
  /** The datacenter's region: also answer the region's transforms (shared/subjects.ts). Unset: only the datacenter's. */
  REGION: regionIdSchema.optional(),
  /** The allowlist (backend/outbound/allowlist.ts): hosts, `*.domain`, or `ip:port` explicit local origins. */
  IMAGE_SOURCE_HOSTS: z.string().transform((text, ctx) => {
    const parsed = parseAllowlist(text, 'IMAGE_SOURCE_HOSTS')
    if (parsed.ok) return parsed.allowlist
    ctx.addIssue({ code: 'custom', message: parsed.message })
    return z.NEVER
  }),
  /**
   * Transforms at once; default: min(cores, what the memory holds at 192 MiB per transform once 160 MiB
   * and the origin cache are set aside) (memory-budget.ts).
   */
  IMAGE_CONCURRENCY: positiveInt().max(64).optional(),
  /** The memory the default concurrency is planned for; default: the cgroup's memory.max, else the machine's. */
  IMAGE_MEMORY_BUDGET_BYTES: positiveInt().optional(),
  /** Requests admitted beyond those transforming; default 8 per transform slot. Past it: `busy`. */
  IMAGE_QUEUE_LIMIT: z.coerce.number().int().min(0).max(10_000).optional(),
  IMAGE_MAX_SOURCE_BYTES: positiveInt().default(20 * MiB),
  /** Per frame, and all frames of an animation together (imgproxy's default; Cloudflare allows 100 MP). */
  IMAGE_MAX_INPUT_PIXELS: positiveInt().default(50_000_000),
  IMAGE_FETCH_CONNECT_TIMEOUT_MS: positiveInt().default(3_000),
  /** The whole fetch, redirects included. */
  IMAGE_FETCH_TIMEOUT_MS: positiveInt().default(10_000),
  /** Frames of an animation that stays animated; more: `image_too_many_frames` (a still is not limited). */
  IMAGE_MAX_FRAMES: positiveInt().max(10_000).default(100),
  /** Total duration of such an animation (the sum of its frame delays); longer: `image_too_many_frames`. */
  IMAGE_MAX_ANIMATION_MS: positiveInt().default(60_000),
  /** sharp's processing timeout (whole seconds, rounded up). */
  IMAGE_TRANSFORM_TIMEOUT_MS: positiveInt().default(20_000),
  /** 0 disables the origin cache (concurrent fetches of one source are still shared). */
  IMAGE_ORIGIN_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * MiB),
  IMAGE_ORIGIN_CACHE_TTL_MS: positiveInt().default(5 * 60_000),
  /**
   * 0-9. CPU of a 12 MP photo to 800 px AVIF q55 against WebP q82, measured here: effort 0 about 0.9-1.3x
   * (imgproxy's default speed 9 is the same setting), 1 about 1.4-1.6x, 2 3.5x, 3 6x, 4 (sharp's default)
   * 34x. Quality per byte (PSNR) was the same for 0, 1 and 2, so 0.
   */
  IMAGE_AVIF_EFFORT: z.coerce.number().int().min(0).max(9).default(0),
  /** Caps reply chunks below the server's max_payload (tests use it to see chunking on small images). */
  IMAGE_REPLY_CHUNK_BYTES: positiveInt().optional(),
})

export type ImagesConfig = z.infer<typeof imagesConfigSchema>
