// The deploy example's page script: loads the folder `untie export RUN model --onnx` wrote (model/ beside
// index.html, or the folder ?model=NAME names) with transformers.js on onnxruntime-web, and answers the pipeline its class calls for: fill-mask
// for a masked LM, token-classification or text-classification for a fine-tuned classifier. Everything it
// fetches comes from the page's own server: the model folder, and onnxruntime's .wasm copied into dist/ by
// scripts/build-deploy.ts (transformers.js would otherwise fetch it from a CDN). Its state is kept on
// document.body.dataset for test/deploy-example.test.ts.
import { env, pipeline, PretrainedConfig } from '@huggingface/transformers';
import { pipelineTask, transformersJsConfig } from '../../src/export/transformers-js.js';

type Task = ReturnType<typeof pipelineTask>;

const EXAMPLES: Record<Task, string> = {
  'fill-mask': 'the jury said it did not [MASK] that many of the voters',
  'token-classification': 'the jury said it did not find that many of the voters',
  'text-classification': 'free money: reply now to claim your prize',
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function setStatus(status: 'loading' | 'ready' | 'running' | 'done' | 'error', text: string): void {
  document.body.dataset.status = status;
  $('status').textContent = text;
}

/** One table row of cells; a number is a probability, drawn with a bar as long as its share of `top` (the table's largest). */
function row(cells: (string | number)[], header = false, top = 1): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement(header ? 'th' : 'td');
    if (typeof cell === 'number') {
      td.className = 'num';
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.round((cell / top) * 120)}px`;
      td.append(`${cell.toFixed(4)} `, bar);
    } else {
      td.textContent = cell;
    }
    tr.append(td);
  }
  return tr;
}

interface Prediction { token_str?: string; sequence?: string; entity?: string; word?: string; label?: string; score: number }

function render(task: Task, predictions: Prediction[]): void {
  const head = $('results-head'), body = $('results-body');
  head.replaceChildren(row(task === 'fill-mask' ? ['token', 'probability', 'sequence'] : task === 'token-classification' ? ['token', 'label', 'probability'] : ['label', 'probability'], true));
  const top = Math.max(...predictions.map((p) => p.score));
  body.replaceChildren(...predictions.map((p) => row(
    task === 'fill-mask' ? [p.token_str!, p.score, p.sequence!] : task === 'token-classification' ? [p.word!, p.entity!, p.score] : [p.label!, p.score],
    false, top,
  )));
  $('results').hidden = false;
}

async function main(): Promise<void> {
  const base = new URL('./', location.href);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = base.pathname;
  // A re-exported model must not be answered from a cache of the last one.
  env.useBrowserCache = false;
  env.useWasmCache = false;
  const wasm = env.backends.onnx.wasm!;
  wasm.wasmPaths = { mjs: new URL('dist/ort-wasm-simd-threaded.mjs', base).href, wasm: new URL('dist/ort-wasm-simd-threaded.wasm', base).href };
  wasm.numThreads = 1; // threads need a cross-origin-isolated page, which a plain static server does not give

  const params = new URLSearchParams(location.search);
  const folder = params.get('model') ?? 'model';
  if (!/^[\w.-]+$/.test(folder) || folder.startsWith('.')) throw new Error(`?model= names a folder beside this page, not "${folder}"`);
  const started = performance.now();
  const response = await fetch(new URL(`${folder}/config.json`, base));
  if (!response.ok) throw new Error(`no ${folder}/config.json beside this page: export a model into ${folder}/ first (see README.md)`);
  const config = (await response.json()) as Record<string, unknown> & { architectures: string[] };
  const architecture = config.architectures[0];
  const task = pipelineTask(architecture);
  // A Pre-LN model's config names RoBERTa-PreLayerNorm, which transformers.js lacks; its BERT class runs the same graph.
  const options = { device: 'wasm' as const, dtype: 'fp32' as const, ...(config.model_type === 'bert' ? {} : { config: new PretrainedConfig(transformersJsConfig(config)) }) };
  const run = (await pipeline(task, folder, options)) as unknown as (text: string, opts: Record<string, unknown>) => Promise<Prediction[]>;
  const norm = config.model_type === 'bert' ? 'Post-LN' : 'Pre-LN';
  const loadMs = performance.now() - started;
  $('model').textContent = `${folder}/: ${architecture} (${norm}, ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, ` +
    `vocabulary ${config.vocab_size}); task: ${task}; loaded in ${loadMs.toFixed(0)} ms.`;
  document.body.dataset.loadMs = loadMs.toFixed(1);

  const input = $<HTMLInputElement>('text');
  input.value = params.get('text') ?? EXAMPLES[task];
  const labels = Object.keys((config.id2label as Record<string, string> | undefined) ?? {}).length;
  let runs = 0;
  const ask = async () => {
    setStatus('running', 'running ...');
    const asked = performance.now();
    const out = await run(input.value, task === 'fill-mask' ? { top_k: 5 } : task === 'token-classification' ? { ignore_labels: [] } : { top_k: labels });
    const ms = performance.now() - asked;
    render(task, out);
    document.body.dataset.results = JSON.stringify(out);
    setStatus('done', `answered in ${ms.toFixed(0)} ms${runs++ === 0 ? ' (the first answer includes onnxruntime\'s warm-up; press Run again)' : ''}`);
  };
  $('form').addEventListener('submit', (e) => {
    e.preventDefault();
    ask().catch(fail);
  });
  $<HTMLButtonElement>('run').disabled = false;
  await ask();
}

function fail(err: unknown): void {
  setStatus('error', `error: ${err instanceof Error ? err.message : String(err)}`);
}

setStatus('loading', 'loading transformers.js and the model ...');
main().catch(fail);
