import { createRequire } from 'node:module';

/**
 * The slice of OpenCV.js (@techstark/opencv-js, OpenCV 4.5 compiled to WebAssembly) that
 * framepipe uses, typed narrowly here: the package's own typings (mirada) describe the whole
 * library, have no default export and cost the type checker more than the code they cover.
 * Every Mat is WebAssembly memory the garbage collector never frees: call delete().
 */
export interface CvMat {
  rows: number;
  cols: number;
  data: Uint8Array;
  data32F: Float32Array;
  data32S: Int32Array;
  roi(rect: CvRect): CvMat;
  delete(): void;
}

export interface CvMatVector {
  size(): number;
  get(i: number): CvMat;
  push_back(m: CvMat): void;
  delete(): void;
}

export interface CvRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface CvRotatedRect {
  center: { x: number; y: number };
  size: { width: number; height: number };
  angle: number;
}

export interface CvSize {
  width: number;
  height: number;
}

interface CvScalarCtor {
  new (v0: number, v1?: number, v2?: number, v3?: number): number[];
}

export interface OpenCv {
  Mat: {
    new (): CvMat;
    new (rows: number, cols: number, type: number): CvMat;
    new (rows: number, cols: number, type: number, fill: number[]): CvMat;
    zeros(rows: number, cols: number, type: number): CvMat;
  };
  MatVector: new () => CvMatVector;
  Rect: new (x: number, y: number, width: number, height: number) => CvRect;
  Size: new (width: number, height: number) => CvSize;
  Scalar: CvScalarCtor;
  RotatedRect: { points(r: CvRotatedRect): { x: number; y: number }[] };
  matFromArray(rows: number, cols: number, type: number, array: ArrayLike<number>): CvMat;
  findContours(image: CvMat, contours: CvMatVector, hierarchy: CvMat, mode: number, method: number): void;
  minAreaRect(points: CvMat): CvRotatedRect;
  fillPoly(img: CvMat, pts: CvMatVector, color: number[]): void;
  mean(src: CvMat, mask: CvMat): number[];
  getPerspectiveTransform(src: CvMat, dst: CvMat): CvMat;
  warpPerspective(src: CvMat, dst: CvMat, m: CvMat, size: CvSize, flags: number, borderMode: number, borderValue: number[]): void;
  resize(src: CvMat, dst: CvMat, size: CvSize, fx: number, fy: number, interpolation: number): void;
  CV_8UC1: number;
  CV_8UC3: number;
  CV_32FC1: number;
  CV_32FC2: number;
  CV_32SC2: number;
  RETR_LIST: number;
  CHAIN_APPROX_SIMPLE: number;
  INTER_LINEAR: number;
  INTER_CUBIC: number;
  INTER_AREA: number;
  BORDER_REPLICATE: number;
}

interface CvModule {
  Mat?: unknown;
  onRuntimeInitialized?: () => void;
  then?: unknown;
}

let loading: Promise<OpenCv> | undefined;

/**
 * Loads OpenCV.js once per process (about 0.4 s and 100 MB RSS on the 2-core test machine).
 *
 * Emscripten's Node glue installs process-wide `uncaughtException` (rethrow) and
 * `unhandledRejection` (abort the WebAssembly runtime) listeners when the module loads. Those
 * would override the pipeline's own error handling and turn any stray rejection into a
 * RuntimeError, so the listeners it adds are removed again right after loading.
 */
export function loadOpenCv(): Promise<OpenCv> {
  loading ??= new Promise<OpenCv>((resolve, reject) => {
    const exceptionHandlers = process.listeners('uncaughtException');
    const rejectionHandlers = process.listeners('unhandledRejection');
    let mod: CvModule;
    try {
      mod = createRequire(import.meta.url)('@techstark/opencv-js') as CvModule;
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    for (const l of process.listeners('uncaughtException')) {
      if (!exceptionHandlers.includes(l)) process.removeListener('uncaughtException', l);
    }
    for (const l of process.listeners('unhandledRejection')) {
      if (!rejectionHandlers.includes(l)) process.removeListener('unhandledRejection', l);
    }
    const done = (): void => {
      // Emscripten makes the module a thenable that calls back with itself; resolving a promise
      // with it would recurse for ever, so it stops being one once it is ready.
      delete mod.then;
      resolve(mod as unknown as OpenCv);
    };
    if (mod.Mat) done();
    else mod.onRuntimeInitialized = done;
  });
  return loading;
}
