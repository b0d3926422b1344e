// Entry of an ONNX Runtime worker thread (src/models/ort-pool.ts). A worker does not always get
// the tsx loader of the thread that starts it (under `node --test` it does not), so it loads
// its TypeScript through tsx's API itself.
import { tsImport } from 'tsx/esm/api';

await tsImport('./ort-worker.ts', import.meta.url);
