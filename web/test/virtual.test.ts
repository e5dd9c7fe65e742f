import { describe, expect, it } from 'vitest';
import { scrollToRow, visibleRange } from '../src/virtual';

describe('visibleRange', () => {
  it('covers the viewport plus overscan', () => {
    expect(visibleRange(0, 440, 44, 10_000, 5)).toEqual({ start: 0, end: 15 });
    expect(visibleRange(4400, 440, 44, 10_000, 5)).toEqual({ start: 95, end: 115 });
    expect(visibleRange(4420, 440, 44, 10_000, 0)).toEqual({ start: 100, end: 111 });
  });

  it('stays within the rows', () => {
    expect(visibleRange(439_000, 900, 44, 10_000, 6)).toEqual({ start: 9971, end: 10_000 });
    expect(visibleRange(0, 900, 44, 3, 6)).toEqual({ start: 0, end: 3 });
    expect(visibleRange(0, 900, 44, 0, 6)).toEqual({ start: 0, end: 0 });
    expect(visibleRange(-50, 100, 44, 10, 0)).toEqual({ start: 0, end: 3 }); // overscroll bounce
    expect(visibleRange(5000, 100, 44, 10, 2)).toEqual({ start: 10, end: 10 }); // rows vanished under the scroll position
  });
});

describe('scrollToRow', () => {
  it('scrolls only when the row is out of view', () => {
    expect(scrollToRow(5, 0, 440, 44)).toBeNull();
    expect(scrollToRow(10, 0, 440, 44)).toBe(44);
    expect(scrollToRow(2, 200, 440, 44)).toBe(88);
    expect(scrollToRow(0, 0, 440, 44)).toBeNull();
  });
});
