/**
 * How one request is steered: STEERING_MODE (`measured` by default; `distance` is the operator's
 * switch back to steering without measurements). Where ALLOW_GEO_OVERRIDE is on (local runs and
 * tests) a request may ask for either with `x-steering-mode`, so the two can be compared side by side
 * on one edge; anywhere else the header is ignored, as is an unknown value.
 */
import type { EdgeConfig } from '../config.ts'
import { steeringModes, type SteeringMode } from './choose.ts'

const isMode = (value: string | null): value is SteeringMode =>
  (steeringModes as readonly (string | null)[]).includes(value)

export function steeringModeOf(
  request: Request,
  config: Pick<EdgeConfig, 'steeringMode' | 'allowGeoOverride'>
): SteeringMode {
  if (!config.allowGeoOverride) return config.steeringMode
  const asked = request.headers.get('x-steering-mode')
  return isMode(asked) ? asked : config.steeringMode
}
