/**
 * The browser example's page script: loads untie's WebAssembly kernels
 * (dist/untie.wasm, copied there by npm run build:browser) with WebAssembly.instantiate, makes them the
 * engine's kernels, trains the tiny model of demo.ts for STEPS steps and
 * plots the loss as it goes (an SVG polyline; no chart library).
 *
 * For the test (test/browser-example.test.ts) and anyone curious, the page
 * keeps its state on `document.body.dataset`: status ('loading', 'training',
 * 'done' or 'error'), steps done, and the losses as JSON.
 */
import { useKernels } from '../../src/backend/index.js';
import { instantiateWasmKernels } from '../../src/backend/wasm.js';
import { trainDemo, type DemoStep } from './demo.js';

const STEPS = 60;

const status = document.getElementById('status')!;
const plot = document.getElementById('loss') as unknown as SVGSVGElement;
const line = document.getElementById('loss-line') as unknown as SVGPolylineElement;
const W = 600, H = 300, PAD = 30;

function draw(steps: DemoStep[]): void {
  const top = Math.max(...steps.map((s) => s.loss), 1e-9);
  line.setAttribute('points', steps.map((s) => {
    const x = PAD + ((s.step - 1) / Math.max(1, STEPS - 1)) * (W - 2 * PAD);
    const y = H - PAD - (s.loss / top) * (H - 2 * PAD);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(' '));
  document.getElementById('y-top')!.textContent = top.toFixed(2);
}

async function main(): Promise<void> {
  document.body.dataset.status = 'loading';
  // A page rarely needs 4 GiB: 256 MB holds this model many times over.
  const kernels = await instantiateWasmKernels(fetch('dist/untie.wasm'), { memoryBytes: 256 * 2 ** 20 });
  useKernels(kernels);
  document.body.dataset.status = 'training';
  const done: DemoStep[] = [];
  await trainDemo(STEPS, async (s) => {
    done.push(s);
    draw(done);
    status.textContent = `step ${s.step}/${STEPS}: loss ${s.loss.toFixed(3)} (${s.ms.toFixed(0)} ms/step on the ${kernels.name} kernels)`;
    document.body.dataset.steps = String(s.step);
    document.body.dataset.losses = JSON.stringify(done.map((d) => d.loss));
    // Let the page paint between steps.
    await new Promise((resolve) => setTimeout(resolve, 0));
  });
  document.body.dataset.status = 'done';
  plot.dataset.points = String(done.length);
}

main().catch((err: unknown) => {
  document.body.dataset.status = 'error';
  status.textContent = `error: ${err instanceof Error ? err.message : String(err)}`;
  throw err;
});
