#!/usr/bin/env node
// The framepipe command. The sources are TypeScript run through tsx (no build step), so that
// `npm install && npx framepipe ...` works straight from a clone.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
