import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface SoakPoint {
  /** Seconds since the soak started. */
  t: number;
  /** Events applied so far. */
  events: number;
  rssMb: number;
  heapMb: number;
  eldP99Ms: number | null;
  eldMaxMs: number | null;
}

/**
 * The soak's plot, drawn by vega-lite rendered headless (no browser, no canvas: vega's SVG string renderer):
 * worker RSS and heap over time above (with the ±10 % band around the post-warm-up reference), its event-loop
 * delay (p99 and max per sample) below, the warm-up shaded grey.
 */
export async function soakSvg(points: SoakPoint[], warmupT: number, title: string, rssRefMb?: number): Promise<string> {
  const mem = points.flatMap((p) => [
    { t: p.t, series: 'RSS', mb: p.rssMb },
    { t: p.t, series: 'V8 heap used', mb: p.heapMb },
  ]);
  const eld = points.flatMap((p) =>
    p.eldP99Ms === null ? [] : [
      { t: p.t, series: 'p99', ms: p.eldP99Ms },
      { t: p.t, series: 'max', ms: p.eldMaxMs },
    ],
  );
  const end = points.at(-1)?.t ?? 0;
  const warm = { data: { values: [{ from: 0, to: warmupT }] }, mark: { type: 'rect', color: '#eee' }, encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } } };
  const x = { field: 't', type: 'quantitative', title: 'seconds', scale: { domain: [0, end] } };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    background: 'white',
    vconcat: [
      {
        width: 640,
        height: 200,
        layer: [
          warm,
          // ±10 % around the post-warm-up reference RSS (median of its first quarter): the band "flat" means.
          ...(rssRefMb
            ? [{ data: { values: [{ from: warmupT, to: end, lo: rssRefMb * 0.9, hi: rssRefMb * 1.1 }] }, mark: { type: 'rect', color: '#4c78a8', opacity: 0.12 }, encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' }, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } }]
            : []),
          { data: { values: mem }, mark: { type: 'line', point: false }, encoding: { x, y: { field: 'mb', type: 'quantitative', title: 'worker memory (MB)', scale: { zero: true } }, color: { field: 'series', type: 'nominal', title: null } } },
        ],
      },
      {
        width: 640,
        height: 160,
        layer: [
          warm,
          { data: { values: eld }, mark: { type: 'line' }, encoding: { x, y: { field: 'ms', type: 'quantitative', title: 'event-loop delay (ms)', scale: { zero: true } }, color: { field: 'series', type: 'nominal', title: null, scale: { range: ['#e45756', '#f2a541'] } } } },
        ],
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
