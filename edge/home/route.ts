/** `/`: the landing page, from the nearest healthy datacenter's web service. */
import { Hono } from 'hono'
import type { AppEnv } from '../env.ts'
import { proxyToDatacenter } from '../http/datacenter.ts'

export const home = new Hono<AppEnv>()

home.get('/', (c) => proxyToDatacenter(c, '/'))
