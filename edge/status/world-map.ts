/**
 * The status page's map: Natural Earth's land at 1:110m (world-atlas `land-110m.json`, 55 KB of
 * TopoJSON in the Worker bundle) drawn with d3-geo in the Natural Earth projection, turned to the
 * datacenters' middle meridian and fitted (`fitExtent`) to a box around every datacenter of the
 * catalogue, so that three datacenters in Europe zoom to Europe and six on three continents span the
 * world. The box is at least MIN_SPAN degrees wide and high: Frankfurt, Amsterdam and London alone
 * would fill the map with the North Sea.
 *
 * Coordinates are SVG user units of a WIDTH x HEIGHT viewBox. The land is clipped to it
 * (`clipExtent`), so the path holds only what shows: about 4 KB for Europe, 35 KB for the world.
 * Projecting and clipping the land costs about 10-20 ms of CPU (measured in Node on the project's
 * machine), so a map is made once per catalogue and isolate (the catalogue is the isolate's
 * configuration) and kept; the viewer's point and route, which differ per request, are cheap.
 *
 * Beside each datacenter its label, and beside each vantage's site (issue #16) a small mark with the
 * vantage's region: placed where they cover no marker and no label placed before them.
 */
import { geoGraticule10, geoInterpolate, geoNaturalEarth1, geoPath, type GeoPermissibleObjects } from 'd3-geo'
import { feature } from 'topojson-client'
import { z } from 'zod'
import land110m from 'world-atlas/land-110m.json' with { type: 'json' }

export const WIDTH = 960
export const HEIGHT = 480
/** Room around the outermost datacenters for their markers and labels. */
const PADDING = 56
/** The smallest box the map shows, in degrees of longitude and latitude. */
const MIN_SPAN = { lon: 44, lat: 22 }
/** Marker radius and label size, in user units (the SVG scales with the page). */
export const MARKER_RADIUS = 7
export const LABEL_SIZE = 15
/** A vantage's mark (half its diagonal) and label, smaller than a datacenter's. */
export const VANTAGE_SIZE = 4.5
export const VANTAGE_LABEL_SIZE = 12

export interface Placed {
  x: number
  y: number
}

export type MapLabel = Placed & { anchor: 'start' | 'middle' | 'end' }

export interface MapMarker extends Placed {
  id: string
  /** Where the datacenter's label goes: beside the marker, where it covers no other marker or label. */
  label: MapLabel
}

/** A vantage's mark: next to its site's marker, with its region's id as label. */
export interface VantageMarker extends Placed {
  /** The vantage's (its region's) id. */
  id: string
  /** The datacenter it probes from. */
  site: string
  label: MapLabel
}

export interface WorldMap {
  width: number
  height: number
  /** SVG path data: the globe's outline (the sea), the 10° graticule, the land. */
  sphere: string
  graticule: string
  land: string
  /** One per datacenter, in catalogue order. */
  markers: MapMarker[]
  /** One per vantage, in the order given. */
  vantages: VantageMarker[]
  /** Where a point is drawn, or undefined when it falls outside the map. */
  place(lon: number, lat: number): Placed | undefined
  /** The great circle between two points, clipped to the map ('' when none of it shows). */
  route(from: [lon: number, lat: number], to: [lon: number, lat: number]): string
  /** The middle of that great circle, or undefined when it falls outside the map. */
  midpoint(from: [lon: number, lat: number], to: [lon: number, lat: number]): Placed | undefined
}

interface Located {
  id: string
  lat: number
  lon: number
}

/** A vantage: its id and the id of its site, one of the datacenters. */
interface Probing {
  id: string
  site: string
}

// The one object of land-110m.json, checked once: a JSON import is typed loosely (strings, not the
// literal types topojson-client wants).
const pair = z.tuple([z.number(), z.number()])
const arcIndexes = z.array(z.number())
const landTopologySchema = z.object({
  type: z.literal('Topology'),
  transform: z.object({ scale: pair, translate: pair }),
  arcs: z.array(z.array(z.array(z.number()))),
  objects: z.object({
    land: z.object({
      type: z.literal('GeometryCollection'),
      geometries: z.array(z.object({ type: z.literal('MultiPolygon'), arcs: z.array(z.array(arcIndexes)) })),
    }),
  }),
})

let landFeature: GeoPermissibleObjects | undefined
function land(): GeoPermissibleObjects {
  if (!landFeature) {
    const topology = landTopologySchema.parse(land110m)
    landFeature = feature(topology, topology.objects.land)
  }
  return landFeature
}

const maps = new Map<string, WorldMap>()
/** More would mean catalogues changing under one isolate, which a deploy does not do. */
const MAX_MAPS = 4

/** The map for this catalogue and its vantages, made on first use and kept. */
export function worldMap(datacenters: readonly Located[], vantages: readonly Probing[] = []): WorldMap {
  const key = JSON.stringify([
    datacenters.map(({ id, lat, lon }) => [id, lat, lon]),
    vantages.map(({ id, site }) => [id, site]),
  ])
  let map = maps.get(key)
  if (!map) {
    map = drawMap(datacenters, vantages)
    if (maps.size >= MAX_MAPS) maps.clear()
    maps.set(key, map)
  }
  return map
}

function drawMap(datacenters: readonly Located[], vantages: readonly Probing[]): WorldMap {
  const centre = centralMeridian(datacenters.map((dc) => dc.lon))
  // Longitudes relative to the centre, in -180..180: the box cannot straddle the antimeridian.
  const relative = datacenters.map((dc) => wrap(dc.lon - centre))
  const lats = datacenters.map((dc) => dc.lat)
  const [west, east] = widen(Math.min(...relative), Math.max(...relative), MIN_SPAN.lon, -180, 180)
  const [south, north] = widen(Math.min(...lats), Math.max(...lats), MIN_SPAN.lat, -85, 85)
  // The box's edges as points: fitted as a polygon, its sides would be great circles, not parallels.
  const edge: Array<[number, number]> = []
  for (let i = 0; i <= 8; i++) {
    const lon = west + ((east - west) * i) / 8
    const lat = south + ((north - south) * i) / 8
    edge.push([centre + lon, south], [centre + lon, north], [centre + west, lat], [centre + east, lat])
  }
  const projection = geoNaturalEarth1()
    .rotate([-centre, 0])
    .fitExtent(
      [
        [PADDING, PADDING],
        [WIDTH - PADDING, HEIGHT - PADDING],
      ],
      { type: 'MultiPoint', coordinates: edge }
    )
    .clipExtent([
      [0, 0],
      [WIDTH, HEIGHT],
    ])
  // Natural Earth's 1:110m land is dense already: drawn without adaptive resampling its path data
  // comes out identical (at 0.1 unit) for half the CPU. The rest (the globe's outline, the graticule,
  // great-circle routes) needs resampling to bend.
  const resampling = projection.precision()
  const landPath = geoPath(projection.precision(0)).digits(1)(land()) ?? ''
  const path = geoPath(projection.precision(resampling)).digits(1)
  // The Natural Earth projection places every point of the globe, so `projection()` always answers.
  const project = (lon: number, lat: number): Placed => {
    const [x, y] = projection([lon, lat]) ?? [NaN, NaN]
    return { x: round(x), y: round(y) }
  }
  const place = (lon: number, lat: number): Placed | undefined => {
    const { x, y } = project(lon, lat)
    return x >= 0 && x <= WIDTH && y >= 0 && y <= HEIGHT ? { x, y } : undefined
  }
  // Inside the padding by construction: the box was fitted around these very points.
  const points = datacenters.map((dc) => ({ id: dc.id, ...project(dc.lon, dc.lat) }))
  const layout = new Layout(points)
  const markers = points.map((p) => ({ ...p, label: layout.label(p, p.id, LABEL_SIZE, MARKER_RADIUS) }))
  const sites = new Map(points.map((p) => [p.id, p]))
  const vantageMarkers = vantages.flatMap(({ id, site }) => {
    const at = sites.get(site)
    if (!at) return []
    const mark = layout.mark(at)
    return [{ id, site, ...mark, label: layout.label(mark, id, VANTAGE_LABEL_SIZE, VANTAGE_SIZE) }]
  })
  return {
    width: WIDTH,
    height: HEIGHT,
    sphere: path({ type: 'Sphere' }) ?? '',
    graticule: path(geoGraticule10()) ?? '',
    land: landPath,
    markers,
    vantages: vantageMarkers,
    place,
    route: (from, to) => path({ type: 'LineString', coordinates: [from, to] }) ?? '',
    midpoint: (from, to) => place(...geoInterpolate(from, to)(0.5)),
  }
}

/** The meridian in the middle of the datacenters: opposite the widest gap between their longitudes. */
export function centralMeridian(lons: readonly number[]): number {
  const sorted = [...lons].sort((a, b) => a - b)
  if (sorted.length === 0) return 0
  let gapEnd = sorted[0]!
  let widest = sorted[0]! + 360 - sorted[sorted.length - 1]! // the gap across the antimeridian
  for (let i = 1; i < sorted.length; i++) {
    const gap = sorted[i]! - sorted[i - 1]!
    if (gap > widest) [widest, gapEnd] = [gap, sorted[i]!]
  }
  // The datacenters span from the end of the widest gap eastwards, 360 - widest degrees.
  return wrap(gapEnd + (360 - widest) / 2)
}

const wrap = (lon: number) => ((((lon + 180) % 360) + 360) % 360) - 180
const round = (n: number) => Math.round(n * 10) / 10

/** [low, high] widened about its middle to at least `span`, kept within [min, max]. */
function widen(low: number, high: number, span: number, min: number, max: number): [number, number] {
  const grow = Math.max(0, span - (high - low)) / 2
  let [a, b] = [low - grow, high + grow]
  if (a < min) [a, b] = [min, Math.min(max, b + min - a)]
  if (b > max) [a, b] = [Math.max(min, a - (b - max)), max]
  return [a, b]
}

interface Box {
  left: number
  top: number
  right: number
  bottom: number
}

const overlaps = (a: Box, b: Box) =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom

/**
 * Where labels and vantage marks go: each beside its point (right, left, above or below for a label;
 * below, above or diagonally for a mark), at the first place that stays on the map and covers no
 * marker and nothing placed before it. Datacenters in neighbouring cities (Amsterdam, London,
 * Frankfurt on a world map) would otherwise write over each other.
 */
class Layout {
  readonly #taken: Box[]

  constructor(markers: ReadonlyArray<Placed>) {
    const r = MARKER_RADIUS
    this.#taken = markers.map(({ x, y }) => ({ left: x - r, top: y - r, right: x + r, bottom: y + r }))
  }

  /** A label of `text` at `size` beside a point drawn `radius` wide. */
  label({ x, y }: Placed, text: string, size: number, radius: number): MapLabel {
    // An estimate of the text's extent: about 0.6 em per character of a sans-serif id.
    const width = text.length * size * 0.6
    const ascent = size * 0.75
    const gap = radius + 4
    const candidates: MapLabel[] = [
      { x: x + gap, y: y + ascent / 2, anchor: 'start' },
      { x: x - gap, y: y + ascent / 2, anchor: 'end' },
      { x, y: y - gap, anchor: 'middle' },
      { x, y: y + gap + ascent, anchor: 'middle' },
    ]
    const boxOf = (c: MapLabel): Box => {
      const left = c.anchor === 'start' ? c.x : c.anchor === 'end' ? c.x - width : c.x - width / 2
      return { left, right: left + width, top: c.y - ascent, bottom: c.y }
    }
    const label = this.#first(candidates, boxOf)
    return { ...label, x: round(label.x), y: round(label.y) }
  }

  /** A vantage's mark next to its site's marker at `site`. */
  mark(site: Placed): Placed {
    const d = MARKER_RADIUS + VANTAGE_SIZE + 2
    const diagonal = d * Math.SQRT1_2
    const offsets: Array<[number, number]> = [
      [0, d],
      [0, -d],
      [diagonal, diagonal],
      [-diagonal, diagonal],
      [diagonal, -diagonal],
      [-diagonal, -diagonal],
    ]
    const s = VANTAGE_SIZE
    const at = this.#first(
      offsets.map(([dx, dy]) => ({ x: site.x + dx, y: site.y + dy })),
      ({ x, y }) => ({ left: x - s, right: x + s, top: y - s, bottom: y + s })
    )
    return { x: round(at.x), y: round(at.y) }
  }

  /** The first candidate whose box fits; the first of all when none does. It is taken. */
  #first<C>(candidates: readonly C[], boxOf: (c: C) => Box): C {
    const fits = (box: Box) =>
      box.left >= 0 &&
      box.right <= WIDTH &&
      box.top >= 0 &&
      box.bottom <= HEIGHT &&
      !this.#taken.some((other) => overlaps(box, other))
    const chosen = candidates.find((c) => fits(boxOf(c))) ?? candidates[0]!
    this.#taken.push(boxOf(chosen))
    return chosen
  }
}
