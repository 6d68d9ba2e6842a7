/**
 * `untie export CHECKPOINT OUTDIR`: a Hugging Face folder (BertForMaskedLM, or
 * RobertaPreLayerNormForMaskedLM for a Pre-LN model); with --onnx, also the
 * ONNX graph transformers.js and onnxruntime run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UntieError } from '../errors.js';
import { writeFolderWhole } from '../export/folder.js';
import { checkOnnxSource, exportOnnx, ONNX_MODEL_FILE, type OnnxExportResult } from '../export/onnx.js';
import { pipelineTask } from '../export/transformers-js.js';
import { formatBytes } from '../train/fsutil.js';
import { sharingSource, writeSharingExport } from '../train/crossover.js';
import { exportModel } from '../train/load.js';
import { helpText, numberFlag, parse, type Flags } from './args.js';

export const summary = 'write a checkpoint (or a fine-tuned model) as a Hugging Face folder';
const flags: Flags = {
  sharing: {
    type: 'boolean',
    help: 'also write the run\'s sharing state (tying plan, criterion streaks, step), optimizer state and schedule (untie_state.json, ' +
      'optimizer.safetensors), which python/untie_torch loads to go on training in PyTorch (a checkpoint of a Post-LN run with biases)',
  },
  batches: { type: 'string', help: 'with --sharing: also write the run\'s next N updates\' training batches (batches.safetensors)' },
  onnx: {
    type: 'boolean',
    help: `also write ${ONNX_MODEL_FILE}, the model as an ONNX graph (opset 17; inputs input_ids, attention_mask, token_type_ids; output logits) ` +
      'that onnxruntime (Node, web) and transformers.js\'s pipelines run from the folder',
  },
  force: { type: 'boolean', help: 'replace OUTDIR if it is not empty (the new folder is written whole first)' },
};

const about = `${summary}.
A Post-LN model (--norm post) loads with BertForMaskedLM.from_pretrained(OUTDIR) (a fine-tuned model:
BertForTokenClassification / BertForSequenceClassification). Hugging Face's BERT has no Pre-LN form, so a
Pre-LN model (--norm pre) is written as RoBERTa-PreLayerNorm, the same computation under other names:
RobertaPreLayerNormForMaskedLM (RobertaPreLayerNormForTokenClassification / ...ForSequenceClassification),
transformers >= 4.27. Either way AutoTokenizer.from_pretrained(OUTDIR) loads untie's WordPiece tokenizer,
and untie reads the folder back (eval, fill-mask, finetune).
With --onnx, transformers.js loads the folder (pipeline('fill-mask' | 'token-classification' |
'text-classification', OUTDIR)); a Pre-LN model's config says "roberta-prelayernorm", which transformers.js
lacks: pass it the config with model_type "bert" (the graph computes; the type only picks the pipeline's
processing). The folder is written beside OUTDIR and renamed into place when complete.`;


export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse('export', argv, flags);
  if (values.help) {
    console.log(helpText('export', 'RUN_OR_CHECKPOINT OUTDIR', flags, about));
    return 0;
  }
  if (positionals.length !== 2) throw new UntieError('usage: untie export RUN_OR_CHECKPOINT OUTDIR');
  const out = positionals[1];
  const batches = numberFlag('batches', values.batches, { integer: true });
  if (batches !== undefined && !values.sharing) throw new UntieError('--batches goes with --sharing');
  if (batches !== undefined && batches < 1) throw new UntieError(`--batches must be a whole number >= 1, got ${batches}`);
  // Refuse before anything is written.
  if (values.sharing) sharingSource(positionals[0]);
  if (values.onnx) checkOnnxSource(positionals[0]);
  const { r, onnx } = await writeFolderWhole(out, { force: values.force === true, source: positionals[0] }, async (dir) => {
    const onnx = values.onnx ? exportOnnx(positionals[0], dir) : null;
    const r = onnx ?? exportModel(positionals[0], dir);
    if (values.sharing) await writeSharingExport(positionals[0], dir, { batches });
    return { r, onnx };
  });
  console.log(`wrote ${out} from ${r.source}: ${fs.readdirSync(out).sort().join(', ')}`);
  console.log(`Hugging Face: ${r.architecture}.from_pretrained(${JSON.stringify(out)}) and AutoTokenizer.from_pretrained(${JSON.stringify(out)}) load it.`);
  if (r.modelType !== 'bert') {
    console.log(
      'This is a Pre-LN model, which Hugging Face\'s BERT classes cannot hold: it is written as RoBERTa-PreLayerNorm ' +
        `(model_type "${r.modelType}", transformers >= 4.27), which computes the same function.`,
    );
    if (r.architecture.endsWith('ForSequenceClassification')) {
      console.log('Its classification head gives the same logits; fine-tuning it further in Hugging Face adds one dropout (on the first token) that untie\'s head does not have.');
    }
  }
  if (onnx) printOnnx(onnx, out);
  if (values.sharing) console.log(`untie_torch: load_untie_export(${JSON.stringify(out)}, model, optimizer) continues the run in PyTorch (see docs/pytorch.md).`);
  return 0;
}

function printOnnx(r: OnnxExportResult, out: string): void {
  const dir = JSON.stringify(path.resolve(out));
  console.log(`ONNX: ${path.join(out, ONNX_MODEL_FILE)} (${formatBytes(r.onnxBytes)}, opset ${r.opset}; inputs input_ids, attention_mask, token_type_ids; output logits).`);
  const task = pipelineTask(r.architecture);
  if (!r.needsConfigOverride) {
    console.log(`transformers.js: env.allowRemoteModels = false; await pipeline('${task}', ${dir}) loads it.`);
  } else {
    console.log(
      `transformers.js has no RoBERTa-PreLayerNorm class; its BERT class feeds and reads this graph the same way: ` +
        `await pipeline('${task}', ${dir}, { config }), config being the folder's config.json with model_type "bert" (untie's transformersJsConfig gives it).`,
    );
  }
}
