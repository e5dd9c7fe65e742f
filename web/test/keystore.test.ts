import { describe, expect, it } from 'vitest';
import { KeyStore, STORAGE_NAME, type KeyStorage } from '../src/keystore';

class MemoryStorage implements KeyStorage {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

const broken: KeyStorage = {
  getItem: () => { throw new Error('SecurityError'); },
  setItem: () => { throw new Error('QuotaExceededError'); },
  removeItem: () => { throw new Error('SecurityError'); },
};

describe('KeyStore', () => {
  it('keeps the key for the tab only by default', () => {
    const tab = new MemoryStorage();
    const device = new MemoryStorage();
    const k = new KeyStore(tab, device);
    k.set('  okey ', false);
    expect(k.value).toBe('okey');
    expect(k.isRemembered).toBe(false);
    expect(tab.getItem(STORAGE_NAME)).toBe('okey');
    expect(device.getItem(STORAGE_NAME)).toBeNull();
    expect(new KeyStore(tab, device).value).toBe('okey'); // a reload of the tab
    expect(new KeyStore(new MemoryStorage(), device).value).toBe(''); // another tab
  });

  it('remembers the key on the device only when asked', () => {
    const tab = new MemoryStorage();
    const device = new MemoryStorage();
    new KeyStore(tab, device).set('okey', true);
    expect(device.getItem(STORAGE_NAME)).toBe('okey');
    const later = new KeyStore(new MemoryStorage(), device);
    expect(later.value).toBe('okey');
    expect(later.isRemembered).toBe(true);
    // Unticking forgets it on the device.
    later.set('okey', false);
    expect(device.getItem(STORAGE_NAME)).toBeNull();
  });

  it('forgets everywhere', () => {
    const tab = new MemoryStorage();
    const device = new MemoryStorage();
    const k = new KeyStore(tab, device);
    k.set('okey', true);
    k.clear();
    expect(k.value).toBe('');
    expect(tab.m.size + device.m.size).toBe(0);
  });

  it('works in memory when storage is unavailable', () => {
    const k = new KeyStore(broken, undefined);
    expect(k.value).toBe('');
    k.set('okey', true);
    expect(k.value).toBe('okey');
    k.clear();
    expect(k.value).toBe('');
  });
});
