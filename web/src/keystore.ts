/** Where the key is kept under. */
export const STORAGE_NAME = 'dynaprice.apiKey';

/** The part of the Web Storage interface used here. */
export type KeyStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

/**
 * KeyStore keeps the operator's API key: for this tab only (sessionStorage)
 * unless the user asked to remember it on this device (localStorage). It is
 * never put in a URL. Storage that throws (disabled, private mode) is
 * tolerated: the key then lives in memory only.
 */
export class KeyStore {
  private key = '';
  private remembered = false;

  constructor(private readonly tab: KeyStorage | undefined, private readonly device: KeyStorage | undefined) {
    const d = read(device);
    if (d) {
      this.key = d;
      this.remembered = true;
    } else {
      this.key = read(tab);
    }
  }

  get value(): string {
    return this.key;
  }

  get isRemembered(): boolean {
    return this.remembered;
  }

  set(key: string, remember: boolean): void {
    this.key = key.trim();
    this.remembered = remember;
    write(this.tab, this.key);
    write(this.device, remember ? this.key : '');
  }

  clear(): void {
    this.set('', false);
  }
}

function read(s: KeyStorage | undefined): string {
  try {
    return s?.getItem(STORAGE_NAME) ?? '';
  } catch {
    return '';
  }
}

function write(s: KeyStorage | undefined, v: string): void {
  try {
    if (v) s?.setItem(STORAGE_NAME, v);
    else s?.removeItem(STORAGE_NAME);
  } catch {
    // Storage unavailable: memory only.
  }
}
