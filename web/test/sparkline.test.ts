import { describe, expect, it } from 'vitest';
import { sparkPoints } from '../src/sparkline';

describe('sparkPoints', () => {
  it('spans the box, highest at the top', () => {
    expect(sparkPoints([1, 3, 2], 80, 24)).toBe('0,22 40,2 80,12');
  });

  it('draws a flat series in the middle', () => {
    expect(sparkPoints([5, 5, 5, 5], 30, 24)).toBe('0,12 10,12 20,12 30,12');
  });

  it('draws nothing for fewer than two values', () => {
    expect(sparkPoints([], 80, 24)).toBe('');
    expect(sparkPoints([1], 80, 24)).toBe('');
  });

  it('rounds to a tenth of a pixel', () => {
    expect(sparkPoints([0, 1, 0.5, 0.25], 10, 10, 0)).toBe('0,10 3.3,0 6.7,5 10,7.5');
  });
});
