/**
 * The "points" attribute of an SVG polyline drawing values across a w×h box,
 * with pad pixels kept free at top and bottom. A flat series is drawn in the
 * middle; fewer than two values draw nothing.
 */
export function sparkPoints(values: readonly number[], w: number, h: number, pad = 2): string {
  if (values.length < 2) return '';
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const step = w / (values.length - 1);
  const span = hi - lo;
  const inner = h - 2 * pad;
  const out: string[] = [];
  values.forEach((v, i) => {
    const y = span === 0 ? h / 2 : pad + inner - ((v - lo) / span) * inner;
    out.push(`${round(i * step)},${round(y)}`);
  });
  return out.join(' ');
}

const round = (v: number) => Math.round(v * 10) / 10;
