import picomatch from 'picomatch';
import { HttpError } from './errors.js';
import type { StorageClassConfig } from './config/schema.js';

export interface StorageClass extends StorageClassConfig {
  readonly name: string;
}

/**
 * Storage classes from config (docs/design.md §7): the X-Storage-Class header names
 * one, else the first class whose glob matches the name, else "default".
 */
export class Classifier {
  private current!: { classes: ReadonlyMap<string, StorageClass>; matchers: { name: string; test: (name: string) => boolean }[] };

  constructor(config: Readonly<Record<string, StorageClassConfig>>) {
    this.replace(config);
  }

  get classes(): ReadonlyMap<string, StorageClass> {
    return this.current.classes;
  }

  /**
   * New classes for new uploads and the next eviction run (SIGHUP reload);
   * stored files keep the class they were given at upload.
   */
  replace(config: Readonly<Record<string, StorageClassConfig>>): void {
    const classes = new Map(Object.entries(config).map(([name, cls]) => [name, { ...cls, name }]));
    const matchers = [...classes.values()]
      .filter((cls) => cls.name !== 'default' && cls.match.length > 0)
      .map((cls) => ({ name: cls.name, test: picomatch(cls.match, { dot: false }) }));
    this.current = { classes, matchers };
  }

  /** The class of a new upload; an unknown header class is a 400. */
  classify(name: string, headerClass?: string): StorageClass {
    if (headerClass !== undefined) {
      const chosen = this.classes.get(headerClass);
      if (!chosen) {
        throw new HttpError('invalid_request', `Unknown storage class "${headerClass}" in X-Storage-Class.`, {
          header: 'X-Storage-Class', known: [...this.classes.keys()],
        });
      }
      return chosen;
    }
    const match = this.current.matchers.find((m) => m.test(name));
    return this.get(match?.name ?? 'default');
  }

  get(name: string): StorageClass {
    return this.classes.get(name) ?? this.classes.get('default')!;
  }
}
