/** `untie train`: pre-train BERT with masked LM, sharing layers and then untying them. */
import fs from 'node:fs';
import path from 'node:path';
import { kernels } from '../backend/index.js';
import { UntieError } from '../errors.js';
import { defaultRunConfig, encoderOnlyError, mergeConfig, parseDuration, readConfigFile, runConfigOf, validateDecoderSettings, validateRunConfig, PRESETS, type RunConfig } from '../train/config.js';
import { finishedRun } from '../train/finished.js';
import { listRunDirs } from '../report/read.js';
import { checkCreatable } from '../train/fsutil.js';
import { runDirOf, train } from '../train/trainer.js';
import { startServer, type RunningServer } from '../serve/server.js';
import { commandAsRun, helpText, noPositionals, numberFlag, parse, type Flags } from './args.js';
import { DEFAULT_PORT, exposureNote, serverFlags } from './serve.js';

export const summary = 'pre-train a BERT encoder (masked LM) or a GPT decoder (next token), shared layers then untied';

const d = defaultRunConfig('tiny');

/** Flags that set a numeric config field: flag -> [section, key, integer]. */
const NUMERIC: Record<string, [keyof RunConfig, string, boolean, string]> = {
  steps: ['train', 'steps', true, 'training steps (optimizer updates)'],
  seed: ['train', 'seed', true, 'random seed (init, dropout, data order, masking)'],
  'batch-size': ['train', 'batchSize', true, 'sequences per micro-batch'],
  'grad-accum': ['train', 'gradAccum', true, 'micro-batches per update'],
  lr: ['train', 'lr', false, 'peak learning rate (preset-dependent)'],
  warmup: ['train', 'warmupSteps', true, 'linear warmup steps (0 = 10% of the steps)'],
  'weight-decay': ['train', 'weightDecay', false, 'decoupled weight decay (not on biases and LayerNorm)'],
  clip: ['train', 'clip', false, 'global gradient-norm clip (0 = off)'],
  threads: ['train', 'threads', true, 'kernel threads (0 = all cores)'],
  'log-every': ['train', 'logEvery', true, 'steps between metrics.jsonl train records'],
  'eval-every': ['train', 'evalEvery', true, 'steps between validations (0 = only at the end)'],
  'save-every': ['train', 'saveEvery', true, 'steps between checkpoints (0 = only at the end)'],
  'keep-last': ['train', 'keepLast', true, 'checkpoints kept'],
  'seq-len': ['data', 'seqLen', true, 'tokens per sequence'],
  'vocab-size': ['data', 'vocabSize', true, 'WordPiece vocabulary size'],
  'eval-batches': ['data', 'evalBatches', true, 'validation batches per evaluation (0 = all)'],
  'mask-prob': ['data', 'maskProb', false, '--model bert: fraction of tokens masked for prediction in training (validation always masks 0.15)'],
  'validation-fraction': ['data', 'validationFraction', false, 'share of the documents held out for validation (a single text file is cut into 100 blocks first)'],
  layers: ['model', 'layers', true, 'encoder layers (preset-dependent)'],
  hidden: ['model', 'hidden', true, 'hidden size (preset-dependent)'],
  heads: ['model', 'heads', true, 'attention heads (preset-dependent)'],
  intermediate: ['model', 'intermediate', true, 'feed-forward size (preset-dependent)'],
  'max-positions': ['model', 'maxPositions', true, 'position-embedding table size'],
  dropout: ['model', 'dropout', false, 'hidden dropout (and attention dropout unless --attention-dropout is given)'],
  'attention-dropout': ['model', 'attentionDropout', false, 'dropout on the attention probabilities (default: --dropout)'],
  'init-std': ['model', 'initStd', false, 'standard deviation of the initial weights'],
  'warmup-fraction': ['train', 'warmupFraction', false, 'linear warmup as a fraction of the run, used when --warmup is 0'],
  'untie-threshold': ['sharing', 'threshold', false, 'rho: adjacent-layer gradient cosine below which layers disagree'],
  'untie-patience': ['sharing', 'patience', true, 'C: consecutive checks below rho before untying'],
  'check-every': ['sharing', 'checkEvery', true, 'K: steps between checks (0 = ~20 checks before 10% of the run); SWE-F and never only log them while tied'],
  'untie-by': ['sharing', 'untieBy', false, 'adaptive/multi: untie by this fraction of the run at the latest (0 = no deadline)'],
};

const STRINGS: Record<string, [keyof RunConfig | null, string, string]> = {
  model: ['model', 'kind', 'bert (an encoder, masked LM) | gpt (a decoder, GPT-2\'s layout, next-token LM)'],
  corpus: ['data', 'corpus', '"brown" (built in), a text file or folder of .txt files, or a generated corpus: synthetic:hops[:symbols=8,hops=4,map=cycle] | synthetic:expr[:modulus=5,depth=4] (docs/depth.md)'],
  out: [null, 'outDir', 'folder that holds run folders'],
  name: [null, 'name', 'run folder name (default: <preset>-<date>)'],
  optimizer: ['train', 'optimizer', 'adamw | lamb'],
  norm: ['model', 'norm', '--model bert: post (Hugging Face BERT) | pre (the paper\'s Pre-LN); a GPT decoder is Pre-LN'],
  bias: ['model', 'bias', 'on | off: biases in the encoder\'s Linear layers (off = Cramming\'s recipe)'],
  schedule: ['train', 'schedule', 'linear | cosine | constant: the learning rate after warmup'],
  'position-init': ['model', 'positionInit', 'normal | sinusoidal: how the learned position table starts'],
  share: ['sharing', 'share', 'tying plan AxB: a unit of A layers repeated B times (default 1x<layers>: all tied)'],
  untie: ['sharing', 'untie', 'never | step:N | fraction:F | adaptive | multi'],
  'shared-grad': ['sharing', 'sharedGrad', 'mean (the paper) | sum (ALBERT)'],
  'untie-optimizer': ['sharing', 'untieOptimizer', 'at untying: copy (each layer continues the shared optimizer state) | rescale (that copy, moments rescaled to the layer\'s own gradient size) | reset'],
  'untie-statistic': ['sharing', 'statistic', 'what adaptive/multi compare with rho: cosine (the paper\'s) | ema | relative | tensor-median'],
  probe: ['train', 'probe', '--model bert: after each validation, train a probe on the frozen encoder and log its test score: pos | spam (off unless given; each costs about one `untie finetune --frozen --seeds 1`)'],
  grow: ['sharing', 'grow', 'progressive stacking: DEPTH@WHEN,... (WHEN a fraction of the run or step:N; e.g. 3@0,6@0.125,12@0.3): start at the first depth, and at each point copy the stack on top of itself (new layer i+k takes layer i\'s weights and optimizer state, by --untie-optimizer); the last depth is --layers'],
  'clip-basis': ['train', 'clipBasis', 'the norm --clip bounds while tied: update (the applied, shared gradient) | layers (every layer\'s own gradient)'],
};

/** The flags of `untie train` (compare accepts them after `--`). */
export function trainFlags(): Flags {
  const f: Flags = {
    preset: { type: 'string', help: `model size: ${Object.keys(PRESETS).join(' | ')}`, default: 'tiny' },
    config: { type: 'string', help: 'JSON config file (same keys as a run\'s config.json); flags override it' },
    resume: { type: 'string', help: 'continue the run in this folder from its newest checkpoint, with the schedule of its first start' },
    'stop-at': { type: 'string', help: 'stop after this step, saving a checkpoint there (as Ctrl-C would); --resume continues the run exactly. With --keep-last, keeps the early checkpoints a probe needs' },
    'extend-to': { type: 'string', help: 'with --resume: lengthen a step-count run to this many steps, recomputing its schedule (lr horizon, warmup, untie step/deadline, check interval); logged in metrics.jsonl' },
    budget: {
      type: 'string',
      help: 'train for this much wall-clock time instead of --steps (900s, 30m, 2h, 1h30m); only training steps count, not evaluation or checkpoints. ' +
        'The learning rate follows the budget spent. Step-count runs stay the default: only they repeat exactly',
    },
    json: { type: 'boolean', help: 'print a JSON summary at the end' },
    quiet: { type: 'boolean', help: 'no progress output' },
    ui: { type: 'boolean', help: 'serve a live page of the run on 127.0.0.1 while it trains (prints its URL; see `untie serve`)' },
    port: { type: 'string', help: `--ui: port (0 = any free port; when the default is taken, the next free one)`, default: String(DEFAULT_PORT) },
    host: { type: 'string', help: '--ui: address to listen on (0.0.0.0 exposes the page to the network)', default: '127.0.0.1' },
    'grow-tied': { type: 'boolean', help: 'with --grow: the copies a growth step makes stay tied to the layer they were copied from, until --untie unties them (counting from that growth step)' },
    'detect-anomaly': { type: 'boolean', help: 'name the first op, tensor and layer whose output or gradient is NaN/infinite (slow; for debugging)' },
  };
  for (const [flag, [section, key, , help]] of Object.entries(NUMERIC)) {
    const def = (d[section] as unknown as Record<string, unknown>)[key];
    f[flag] = { type: 'string', help, default: String(def) };
  }
  for (const [flag, [section, key, help]] of Object.entries(STRINGS)) {
    const raw = section ? (d[section] as unknown as Record<string, unknown>)[key] : (d as unknown as Record<string, unknown>)[key];
    const def = typeof raw === 'boolean' ? (raw ? 'on' : 'off') : raw;
    f[flag] = { type: 'string', help, default: def === '' ? undefined : String(def) };
  }
  return f;
}

/** Builds the run config: preset, then config file, then flags. */
export function configFromFlags(values: Record<string, string | boolean | undefined>): RunConfig {
  const fileCfg = typeof values.config === 'string' ? readConfigFile(values.config) : undefined;
  const preset = typeof values.preset === 'string' ? values.preset
    : fileCfg && typeof (fileCfg as { preset?: unknown }).preset === 'string' ? (fileCfg as { preset: string }).preset : 'tiny';
  let cfg = defaultRunConfig(preset);
  if (fileCfg !== undefined) cfg = mergeConfig(cfg, fileCfg, 'config');
  cfg.preset = preset;
  for (const [flag, [section, key, integer]] of Object.entries(NUMERIC)) {
    const v = numberFlag(flag, values[flag], { integer });
    if (v !== undefined) (cfg[section] as unknown as Record<string, unknown>)[key] = v;
  }
  if (values['attention-dropout'] === undefined && values.dropout !== undefined) cfg.model.attentionDropout = cfg.model.dropout;
  if (typeof values.budget === 'string') {
    if (values.steps !== undefined) throw new UntieError('--budget and --steps both given: a run is either a wall-clock budget or a number of steps; drop one');
    cfg.train.budget = parseDuration(values.budget);
  }
  for (const [flag, [section, key]] of Object.entries(STRINGS)) {
    const v = values[flag];
    if (typeof v !== 'string') continue;
    if (flag === 'bias') {
      if (v !== 'on' && v !== 'off') throw new UntieError(`--bias must be "on" or "off", got "${v}"`);
      cfg.model.bias = v === 'on';
      continue;
    }
    if (section) (cfg[section] as unknown as Record<string, unknown>)[key] = v;
    else (cfg as unknown as Record<string, unknown>)[key] = v;
  }
  if (cfg.model.kind === 'gpt') {
    // A flag given at its default value passes the config's checks; given at all, it says the user meant an encoder.
    if (values['mask-prob'] !== undefined) throw encoderOnlyError('mask-prob');
    // Checked here, before the names below are rewritten: these messages name the flag and the config field both.
    validateDecoderSettings(cfg);
  }
  if (values['grow-tied'] === true) cfg.sharing.growTied = true;
  if (!cfg.name) cfg.name = `${cfg.model.kind === 'gpt' ? 'gpt-' : ''}${cfg.preset}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`;
  try {
    validateRunConfig(cfg);
  } catch (err) {
    // The check names config fields (train.steps); a value the user gave as a flag is named as the flag (--steps).
    if (!(err instanceof UntieError)) throw err;
    let message = err.message;
    for (const [flag, [section, key]] of [...Object.entries(NUMERIC), ...Object.entries(STRINGS)]) {
      if (section && values[flag] !== undefined) message = message.replaceAll(`${section}.${key}`, `--${flag}`);
    }
    throw new UntieError(message);
  }
  return cfg;
}

/** The config of an existing run, with the few settings a resume may change. */
function resumeConfig(dir: string, values: Record<string, string | boolean | undefined>): RunConfig {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(dir)) throw new UntieError(`${dir} does not exist. Pass the folder of the run to continue (runs/NAME; \`untie runs\` lists them).`);
  if (/^checkpoint-\d+$/.test(path.basename(path.resolve(dir)))) {
    throw new UntieError(`${dir} is a checkpoint; --resume takes its run folder, and continues from the newest checkpoint: ${commandAsRun('train')} --resume ${path.dirname(dir)}`);
  }
  if (!fs.existsSync(file)) {
    const inside = listRunDirs(dir).map((p) => path.basename(p));
    if (inside.length > 0) {
      const shown = inside.slice(0, 5).join(', ') + (inside.length > 5 ? `, ... (${inside.length} in all; \`untie runs ${dir}\` lists them)` : '');
      throw new UntieError(`${dir} is a folder of runs, not a run: it holds ${shown}. Resume one of them: ${commandAsRun('train')} --resume ${path.join(dir, inside[inside.length - 1])}`);
    }
    throw new UntieError(`${dir} is not a run folder (no config.json). Pass the folder that \`untie train\` created.`);
  }
  const cfg = runConfigOf(readConfigFile(file), dir);
  cfg.outDir = path.dirname(dir);
  cfg.name = path.basename(dir);
  const allowed = new Set(['resume', 'extend-to', 'stop-at', 'json', 'quiet', 'ui', 'port', 'host', 'detect-anomaly', 'threads', 'eval-every', 'save-every', 'keep-last', 'log-every']);
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || allowed.has(k)) continue;
    if (k === 'steps') throw new UntieError('--steps cannot change on --resume: the run keeps the schedule of its first start. To lengthen it, use --extend-to N, which recomputes the schedule and logs what changed.');
    throw new UntieError(`--${k} cannot change on --resume: the run keeps its saved config.json (only --threads and the logging/saving intervals can change; --extend-to lengthens it)`);
  }
  for (const flag of ['threads', 'eval-every', 'save-every', 'keep-last', 'log-every']) {
    const v = numberFlag(flag, values[flag], { integer: true });
    if (v !== undefined) (cfg.train as unknown as Record<string, unknown>)[NUMERIC[flag][1]] = v;
  }
  return cfg;
}

/** `--ui`: the live page of `untie serve` on the run's folder, started before the run so its URL comes first. */
async function startLivePage(config: RunConfig, values: Record<string, string | boolean | undefined>): Promise<RunningServer> {
  const { port, host, portFallback } = serverFlags(values);
  const server = await startServer({ runsDir: config.outDir, port, host, portFallback });
  const say = values.json ? console.error : console.log; // --json keeps stdout for the summary
  if (portFallback && server.port !== port) say(`port ${port} is in use; using ${server.port} (choose one with --port)`);
  say(`live page: ${server.runUrl(config.name)}`);
  const note = exposureNote(host);
  if (note) say(note);
  return server;
}

export async function run(argv: string[]): Promise<number> {
  const f = trainFlags();
  const { values, positionals } = parse('train', argv, f);
  if (values.help) {
    console.log(helpText('train', '[options]', f, summary + '.\nDefaults are those of the tiny preset; other presets change the model size and learning rate.'));
    return 0;
  }
  noPositionals('train', positionals);
  const resumeDir = typeof values.resume === 'string' ? values.resume : null;
  if (!values.ui && (values.port !== undefined || values.host !== undefined)) throw new UntieError('--port and --host set up the live page: add --ui');
  const config = resumeDir ? resumeConfig(resumeDir, values) : configFromFlags(values);
  if (!resumeDir) checkCreatable(runDirOf(config)); // an odd --out fails now, before the data is read
  const extendTo = numberFlag('extend-to', values['extend-to'], { integer: true });
  const stopAt = numberFlag('stop-at', values['stop-at'], { integer: true, min: 1 });
  const done = resumeDir && extendTo === undefined ? finishedRun(config, resumeDir, commandAsRun('train')) : null;
  if (done) {
    // Not an error: the run is complete. Say so, and touch nothing.
    if (values.json) {
      console.log(JSON.stringify({
        run_dir: resumeDir, steps: done.step, finished: true, final_val_loss: done.lastEval?.valLoss ?? null, final_val_acc: done.lastEval?.valAcc ?? null,
        unigram_val_loss: done.lastEval?.unigramValLoss ?? null, unigram_val_acc: done.lastEval?.unigramValAcc ?? null, seconds: done.elapsed,
      }));
    } else console.log(done.message);
    return 0;
  }
  const server = values.ui ? await startLivePage(config, values) : null;
  let result;
  try {
    result = await train({
      config, resume: resumeDir !== null, extendTo, stopAt, progress: !values.quiet && !values.json,
      command: commandAsRun('train'), detectAnomaly: values['detect-anomaly'] === true,
    });
  } finally {
    if (server) {
      await server.close();
      (values.json ? console.error : console.log)(`live page closed; to see the run again: untie serve ${config.outDir}  (or untie report ${path.join(config.outDir, config.name)})`);
    }
  }
  if (values.json) {
    console.log(JSON.stringify({
      run_dir: result.runDir, steps: result.steps, final_val_loss: result.finalValLoss, final_val_acc: result.finalValAcc,
      ...(result.finalValAccByDifficulty ? { difficulty: result.difficulty, final_val_acc_by_difficulty: result.finalValAccByDifficulty } : {}),
      unigram_val_loss: result.unigramValLoss, unigram_val_acc: result.unigramValAcc,
      seconds: result.seconds, kernels: kernels().name, threads: kernels().getThreads(), ...(config.train.budget > 0 ? { budget: config.train.budget } : {}), untied_at: result.untiedAt, parameters: result.parameters, unique_parameters: result.uniqueParameters,
    }));
  } else {
    console.log(`run folder: ${result.runDir}`);
    console.log(
      `steps: ${result.steps}   final validation loss: ${result.finalValLoss.toFixed(4)} (unigram ${result.unigramValLoss.toFixed(4)})   ` +
        `accuracy: ${(100 * result.finalValAcc).toFixed(2)}% (unigram ${(100 * result.unigramValAcc).toFixed(2)}%)`,
    );
    if (result.finalValAccByDifficulty) {
      console.log(`accuracy by ${result.difficulty}: ${Object.entries(result.finalValAccByDifficulty).map(([d, a]) => `${d}: ${(100 * a).toFixed(2)}%`).join(', ')}`);
    }
    const tying = result.untiedAt !== null ? `untied after step ${result.untiedAt}` : result.uniqueParameters === result.parameters ? 'were never tied' : 'stayed tied';
    console.log(`layers ${tying}; ${result.uniqueParameters.toLocaleString('en-US')} unique of ${result.parameters.toLocaleString('en-US')} parameters at the end; ${result.seconds.toFixed(1)} s of training`);
  }
  return result.interrupted ? 130 : 0; // 128 + SIGINT, as shells expect of an interrupted command
}
