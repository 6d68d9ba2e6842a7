/**
 * What transformers.js needs of an exported folder's config.json. Imports
 * nothing, so that a page (examples/deploy) can use it as it is.
 *
 * The config's model_type only picks transformers.js's pre- and
 * post-processing (which inputs to feed the graph, how to read its logits);
 * the graph is what computes. A Post-LN model is "bert", which
 * transformers.js knows. A Pre-LN model's config.json says
 * "roberta-prelayernorm", so that PyTorch loads the same folder as the right
 * (Pre-LN) class; transformers.js has no such class, and its BERT class is
 * the faithful stand-in: an encoder that takes input_ids, attention_mask and
 * token_type_ids and returns logits, as the graph does.
 */

/** config.json with model_type "bert" and BERT's class names (a Post-LN config comes back unchanged). */
export function transformersJsConfig(config: Record<string, unknown>): Record<string, unknown> {
  const architectures = Array.isArray(config.architectures) ? config.architectures.map((a) => String(a).replace(/^RobertaPreLayerNorm/, 'Bert')) : config.architectures;
  return { ...config, model_type: 'bert', architectures };
}

/** The transformers.js pipeline task for an exported class (config.json's architectures[0]). */
export function pipelineTask(architecture: string): 'fill-mask' | 'token-classification' | 'text-classification' {
  if (architecture.endsWith('ForTokenClassification')) return 'token-classification';
  if (architecture.endsWith('ForSequenceClassification')) return 'text-classification';
  return 'fill-mask';
}
