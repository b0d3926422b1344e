import { readFile } from 'node:fs/promises';
import { StartupError } from '../config/errors.js';
import type { ort } from './ort.js';

/**
 * What a model file declares about its inputs and outputs, and the checks every family runs on
 * it at load time, so that a wrong file (a classifier configured as a detector, 91 classes
 * against an 80-name list) stops the stage with MODEL_MISMATCH instead of producing garbage.
 */

/** One input or output tensor as the model declares it. Symbolic (dynamic) dims are strings. */
export interface TensorSpec {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

export function tensorSpecs(list: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] {
  return list.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape } : { name: m.name, type: 'non-tensor', shape: [] }));
}

/** A dimension fixed in the model (dynamic ones are strings, or -1 in some exports). */
export function fixedDim(d: number | string | undefined): number | undefined {
  return typeof d === 'number' && d > 0 ? d : undefined;
}

export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

export function formatSpecs(specs: TensorSpec[]): string {
  return specs.map((s) => `${s.name} ${s.type} ${formatShape(s.shape)}`).join(', ');
}

export function mismatch(file: string, family: string, message: string): StartupError {
  return new StartupError('MODEL_MISMATCH', `${file} does not fit model kind '${family}': ${message}`);
}

/** Class names, one per line in index order; trailing blank lines are ignored, inner ones are not. */
export async function readNames(file: string, shortNames = false): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new StartupError('MODEL_MISSING', `cannot read class names ${file}: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.replace(/\r/g, '').split('\n');
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) throw new StartupError('MODEL_MISMATCH', `class names file ${file} is empty`);
  return lines.map((l) => (shortNames ? l.split(',')[0]! : l).trim());
}

/** The image input of a model, after the checks. */
export interface ImageInput {
  name: string;
  width: number;
  height: number;
  /** Fixed batch size, or undefined when the batch axis is dynamic. */
  batch: number | undefined;
}

/**
 * Finds and checks the single float32 image input: rank 4, 3 channels where `layout` puts them,
 * and a size that agrees with `configured` ([width, height]) when both are fixed. A model with a
 * dynamic size takes the configured one, or `fallback`.
 */
export function imageInput(
  file: string,
  family: string,
  session: ort.InferenceSession,
  options: { layout: 'nchw' | 'nhwc'; configured?: readonly [number, number]; fallback?: readonly [number, number] },
): ImageInput {
  const inputs = tensorSpecs(session.inputMetadata);
  if (inputs.length !== 1) throw mismatch(file, family, `expected one image input, model has ${inputs.length}: ${formatSpecs(inputs)}`);
  const input = inputs[0]!;
  if (input.type !== 'float32' || input.shape.length !== 4) {
    throw mismatch(file, family, `expected a float32 image input of rank 4, got ${formatSpecs(inputs)}`);
  }
  const [b, d1, d2, d3] = input.shape;
  const [c, h, w] = options.layout === 'nchw' ? [d1, d2, d3] : [d3, d1, d2];
  if (fixedDim(c) !== undefined && c !== 3) {
    throw mismatch(file, family, `input ${input.name} ${formatShape(input.shape)} does not have 3 channels in ${options.layout} layout`);
  }
  const fw = fixedDim(w);
  const fh = fixedDim(h);
  const [cw, ch] = options.configured ?? [undefined, undefined];
  if (cw !== undefined && ((fw !== undefined && fw !== cw) || (fh !== undefined && fh !== ch))) {
    throw mismatch(file, family, `input_size is ${cw}×${ch} but the model's input ${input.name} ${formatShape(input.shape)} is fixed at ${fw ?? '?'}×${fh ?? '?'}`);
  }
  const width = fw ?? cw ?? options.fallback?.[0];
  const height = fh ?? ch ?? options.fallback?.[1];
  if (width === undefined || height === undefined) {
    throw mismatch(file, family, `input ${input.name} ${formatShape(input.shape)} has a dynamic size; set input_size`);
  }
  return { name: input.name, width, height, batch: fixedDim(b) };
}
