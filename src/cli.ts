#!/usr/bin/env -S node --no-memory-reducer --initial-old-space-size=64
// First: V8 settings that must apply before the rest loads. The program is
// imported only once they are set: with static imports the whole module
// graph (~600 modules) loads before the first line here runs, and the young
// generation had already grown to 4 MiB semi-spaces by then.
import './young-generation.js';

await import('./program.js');
