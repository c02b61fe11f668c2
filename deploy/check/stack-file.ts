/**
 * stack.yml as the checks read it: parsed with anchors and `<<` merges, interpolated with the deploy shell's
 * variables (compose-env.ts), then validated against the part of the compose file format the checks look at.
 *
 * The schema is deliberately loose: every field is optional (a missing field is a problem the checks name,
 * with the reason), unknown fields pass through, and each field accepts what `docker stack deploy` accepts
 * for it (a duration as "10s" or nanoseconds, a count also as an interpolated "3"). What it refuses is a
 * field of the wrong kind (`replicas: three`), which docker would refuse too; loadStack then throws a
 * StackFileError naming each such field.
 */
import { parse } from 'yaml'
import { z } from 'zod'
import { describeIssues } from '#shared/catalogue.ts'
import { interpolateValues } from './compose-env.ts'

const scalar = z.union([z.string(), z.number(), z.boolean()], {
  error: 'expected a string, a number or true/false',
})
/** Interpolation yields strings; docker casts them to the field's type, and so does this. */
const count = z.union(
  [
    z.number(),
    z
      .string()
      .regex(/^\d+(\.\d+)?$/)
      .transform(Number),
  ],
  {
    error: 'expected a number',
  }
)
const flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], {
  error: 'expected true or false',
})
/** "10s", "1m30s", or a number of nanoseconds (duration.ts). */
const duration = z.union([z.string(), z.number()], { error: 'expected a duration such as 10s or 1m30s' })
/** cpus ("0.5") and memory ("512M", or bytes). */
const quantity = z.union([z.string(), z.number()], { error: 'expected a quantity such as 0.5 or 512M' })

/** A secret or config as a service lists it: the short form (its name) or the long one. */
const fileReference = z.union([
  z.string(),
  z.looseObject({ source: z.string(), target: z.string().optional(), mode: scalar.optional() }),
])

const updateConfig = z.looseObject({
  parallelism: count.optional(),
  delay: duration.optional(),
  order: z.string().optional(),
  failure_action: z.string().optional(),
  monitor: duration.optional(),
  max_failure_ratio: count.optional(),
})

const resources = z.looseObject({
  cpus: quantity.optional(),
  memory: quantity.optional(),
  pids: count.optional(),
})

const serviceSchema = z.looseObject({
  image: z.string().optional(),
  command: z
    .union([z.string(), z.array(scalar.transform(String))], { error: 'expected a string or a list' })
    .optional(),
  hostname: z.string().optional(),
  user: z.string().optional(),
  init: flag.optional(),
  read_only: flag.optional(),
  stop_signal: z.string().optional(),
  stop_grace_period: duration.optional(),
  /** As a map or as `KEY=value` lines; read as a map, null (take it from the shell) as undefined. */
  environment: z
    .union([z.record(z.string(), scalar.nullable()), z.array(z.string())])
    .transform((env): Record<string, string | undefined> => {
      if (!Array.isArray(env))
        return Object.fromEntries(
          Object.entries(env).map(([k, v]) => [k, v === null ? undefined : String(v)])
        )
      return Object.fromEntries(
        env.map((line): [string, string | undefined] => {
          const at = line.indexOf('=')
          return at < 0 ? [line, undefined] : [line.slice(0, at), line.slice(at + 1)]
        })
      )
    })
    .optional(),
  secrets: z.array(fileReference).optional(),
  configs: z.array(fileReference).optional(),
  networks: z.union([z.array(z.string()), z.record(z.string(), z.looseObject({}).nullable())]).optional(),
  ports: z
    .array(
      z.union([
        z.string(),
        z.number(),
        z.looseObject({
          target: scalar.optional(),
          published: scalar.optional(),
          protocol: z.string().optional(),
          mode: z.string().optional(),
        }),
      ])
    )
    .optional(),
  volumes: z
    .array(
      z.union([
        z.string(),
        z.looseObject({ type: z.string(), source: z.string().optional(), target: z.string().optional() }),
      ])
    )
    .optional(),
  /** The short `tmpfs:` key, which `docker stack deploy` drops (the checks refuse it). */
  tmpfs: z.union([z.string(), z.array(z.string())]).optional(),
  logging: z
    .looseObject({
      driver: z.string().optional(),
      options: z.record(z.string(), scalar.nullable()).optional(),
    })
    .optional(),
  healthcheck: z
    .looseObject({
      test: z.union([z.string(), z.array(z.string())]).optional(),
      interval: duration.optional(),
      timeout: duration.optional(),
      retries: count.optional(),
      start_period: duration.optional(),
      disable: flag.optional(),
    })
    .optional(),
  deploy: z
    .looseObject({
      mode: z.string().optional(),
      replicas: count.optional(),
      endpoint_mode: z.string().optional(),
      placement: z
        .looseObject({
          constraints: z.array(z.string()).optional(),
          preferences: z.array(z.looseObject({ spread: z.string().optional() })).optional(),
          max_replicas_per_node: count.optional(),
        })
        .optional(),
      update_config: updateConfig.optional(),
      rollback_config: updateConfig.optional(),
      restart_policy: z
        .looseObject({
          condition: z.string().optional(),
          delay: duration.optional(),
          max_attempts: count.optional(),
          window: duration.optional(),
        })
        .optional(),
      resources: z
        .looseObject({ limits: resources.optional(), reservations: resources.optional() })
        .optional(),
    })
    .optional(),
})

export const stackSchema = z.looseObject({
  services: z.record(z.string(), serviceSchema).default({}),
  networks: z
    .record(
      z.string(),
      z
        .looseObject({
          driver: z.string().optional(),
          driver_opts: z.record(z.string(), scalar).optional(),
          attachable: flag.optional(),
        })
        .nullable()
    )
    .default({}),
  volumes: z.record(z.string(), z.looseObject({}).nullable()).default({}),
  configs: z
    .record(z.string(), z.looseObject({ name: z.string().optional(), file: z.string().optional() }))
    .default({}),
  secrets: z
    .record(
      z.string(),
      z.looseObject({ external: flag.optional(), name: z.string().optional(), file: z.string().optional() })
    )
    .default({}),
})

export type Stack = z.output<typeof stackSchema>
export type Service = z.output<typeof serviceSchema>
export type FileReference = z.output<typeof fileReference>

/** Fields of the wrong kind, one line each ("services.images.deploy.replicas: expected a number"). */
export class StackFileError extends Error {
  override name = 'StackFileError'
  readonly issues: string[]
  constructor(issues: string[]) {
    super(issues.join('; '))
    this.issues = issues
  }
}

/**
 * Parses a compose file the way `docker stack config` reads it: anchors, `<<` merges, then interpolation;
 * then validates it. Throws on a required variable without a value (as docker does) and on a field of the
 * wrong kind (StackFileError, naming each).
 */
export function loadStack(text: string, env: Record<string, string | undefined>): Stack {
  return validateStack(interpolateValues(parseComposeYaml(text), env))
}

/**
 * A compose file's YAML with its anchors and `<<` merges resolved. The yaml library refuses more than
 * 100 aliased nodes by default (a guard against "billion laughs"); stack.yml's per-datacenter services
 * reuse large anchors, six datacenters pass that bound, and docker's own reader accepts them. Still bounded.
 */
export const parseComposeYaml = (text: string): unknown => parse(text, { merge: true, maxAliasCount: 2_000 })

/** Validates a parsed and interpolated compose file (also `docker stack config`'s output). */
export function validateStack(data: unknown): Stack {
  const result = stackSchema.safeParse(data)
  if (!result.success)
    throw new StackFileError(result.error.issues.map((issue) => describeIssues(new z.ZodError([issue]))))
  return result.data
}
