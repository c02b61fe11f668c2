/**
 * Service configuration from the environment, validated once at start-up.
 * A missing or bad variable stops the service with a message naming it; secrets may come from
 * Docker secrets through the `<NAME>_FILE` convention.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { datacenterIdSchema, regionIdSchema } from '#shared/catalogue.ts'
import { nkeySeedMessage, nkeySeedPattern } from '#shared/nats-permissions.ts'
import { catalogueVariables, CatalogueVariablesError } from './catalogue-variables.ts'

const natsUrlList = z
  .string()
  .min(1)
  .refine(
    (value) => value.split(',').every((url) => /^(nats|tls):\/\/[^\s/]+$/.test(url.trim())),
    'must be a comma-separated list of nats://host:port URLs'
  )

/** A NATS user's nkey seed: the service's only NATS credential (shared/nats-permissions.ts). */
const nkeySeed = z.string().regex(nkeySeedPattern, nkeySeedMessage)

/** What every service needs. Services extend it with their own variables. */
export const baseConfigSchema = z.object({
  DC: datacenterIdSchema,
  NATS_URL: natsUrlList,
  /** Secret (NATS_NKEY_SEED_FILE: the Docker secret nats_seed_<service>). */
  NATS_NKEY_SEED: nkeySeed,
  HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /**
   * The internal HTTP listener: /healthz, /readyz and /metrics, for health checks and Prometheus
   * only. Never published (stack.yml); the public port serves none of them.
   */
  INTERNAL_HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  INTERNAL_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(9090),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How long SIGTERM may take before the service gives up waiting and exits non-zero. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
  HEARTBEAT_INTERVAL_MS: z.coerce.number().int().positive().default(2_000),
  /**
   * The datacenter catalogue as JSON (production: DATACENTERS_FILE, the Docker config of
   * deploy/datacenters.production.json). Given, it decides REGION, DC_NAME and the JetStream layout
   * for this task's DC (catalogue-variables.ts); unset, those come from the environment alone.
   */
  DATACENTERS: z.string().optional(),
})
export type BaseConfig = z.infer<typeof baseConfigSchema>

/** An integer variable with a default and a lower bound. */
export const intVar = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback)

/** A comma-separated list of region ids (`us,ap`); empty or unset: none. */
export const regionList = () =>
  z
    .string()
    .default('')
    .transform((text) =>
      text
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean)
    )
    .pipe(z.array(regionIdSchema))

/** What a worker of a JetStream work queue reads (releases, notifier); each sets its own MAX_DELIVER. */
export const workQueueConfig = (maxDeliver: number) => ({
  JETSTREAM_REPLICAS: intVar(3).pipe(z.number().max(5)),
  /**
   * The catalogue's home region (shared/regions.ts): the streams and buckets a service creates are
   * placed on its servers (`region:<id>` tag). Unset with one region: placed anywhere.
   */
  JETSTREAM_HOME_REGION: regionIdSchema.optional(),
  ACK_WAIT_MS: intVar(30_000, 500),
  MAX_DELIVER: intVar(maxDeliver, 2),
})

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Resolves `<NAME>_FILE` (Docker secrets) into `<NAME>` for the variables the service knows,
 * unless `<NAME>` is already set.
 */
export function resolveSecretFiles(
  env: NodeJS.ProcessEnv,
  names: Iterable<string>
): Record<string, string | undefined> {
  const resolved: Record<string, string | undefined> = { ...env }
  for (const name of names) {
    const key = `${name}_FILE`
    const path = env[key]
    if (!path || resolved[name] !== undefined) continue
    try {
      resolved[name] = readFileSync(path, 'utf8').trim()
    } catch (error) {
      // The errno code (ENOENT, EACCES) says it best; the message repeats the path.
      const why =
        error instanceof Error
          ? 'code' in error && typeof error.code === 'string'
            ? error.code
            : error.message
          : String(error)
      throw new ConfigError(`${key}: cannot read ${path} (${why})`)
    }
  }
  return resolved
}

/** Variables whose values never appear in an error message. */
const secretName = /(SECRET|TOKEN|SEED|KEY|PASSWORD)$/

export function loadConfig<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env
): z.infer<S> {
  const known = Object.keys(schema.shape)
  let input = resolveSecretFiles(env, known)
  if (input.DATACENTERS !== undefined) {
    const source = env.DATACENTERS_FILE ? `DATACENTERS_FILE=${env.DATACENTERS_FILE}` : 'DATACENTERS'
    try {
      input = catalogueVariables(input, input.DATACENTERS, source, new Set(known))
    } catch (error) {
      if (!(error instanceof CatalogueVariablesError)) throw error
      throw new ConfigError(`invalid configuration: ${error.message}`)
    }
  }
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.')
    const key = String(issue.path[0])
    const value = issue.path.length === 1 ? input[key] : undefined
    if (value === undefined) return `${name} is required (${issue.message})`
    // A secret (by its name, or because it came from a secret file) is named, never echoed.
    const secret = secretName.test(key) || env[`${key}_FILE`] !== undefined
    return secret ? `${name}: ${issue.message}` : `${name}=${JSON.stringify(value)}: ${issue.message}`
  })
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`)
}
