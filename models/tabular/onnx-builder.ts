/**
 * Writes the project's own ONNX test model: a nearest-centroid ICL classifier under the adapter's
 * contract. Class centroids come from the train rows inside the graph (OneHot, MatMul, ReduceSum);
 * logits = 2 x.mu_c - |mu_c|^2 (= -|x - mu_c|^2 up to a per-row constant); classes absent from the
 * train rows get -1e9. Built with onnx-proto's generated protobuf classes, opset 13.
 */
import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function valueInfo(name: string, elemType: number, dims: string[]): O.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimParam: d })) } } } };
}

function node(opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}): O.INodeProto {
  return {
    opType, input, output, name: output[0],
    attribute: Object.entries(attrs).map(([name, v]) => (Array.isArray(v) ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v } : { name, type: onnx.AttributeProto.AttributeType.INT, i: v })),
  };
}

export function nearestCentroidOnnx(maxClasses: number): Uint8Array {
  const graph: O.IGraphProto = {
    name: 'tabrecall_nearest_centroid',
    input: [valueInfo('train_x', FLOAT, ['n_train', 'F']), valueInfo('train_y', INT64, ['n_train']), valueInfo('test_x', FLOAT, ['n_test', 'F'])],
    output: [valueInfo('test_logits', FLOAT, ['n_test', String(maxClasses)])],
    initializer: [
      { name: 'depth', dims: [], dataType: INT64, int64Data: [maxClasses] },
      { name: 'onehot_values', dims: [2], dataType: FLOAT, floatData: [0, 1] },
      { name: 'axis0', dims: [1], dataType: INT64, int64Data: [0] },
      { name: 'axis1', dims: [1], dataType: INT64, int64Data: [1] },
      { name: 'eps', dims: [], dataType: FLOAT, floatData: [1e-9] },
      { name: 'two', dims: [], dataType: FLOAT, floatData: [2] },
      { name: 'zero', dims: [], dataType: FLOAT, floatData: [0] },
      { name: 'absent', dims: [], dataType: FLOAT, floatData: [-1e9] },
    ],
    node: [
      node('OneHot', ['train_y', 'depth', 'onehot_values'], ['onehot'], { axis: -1 }),
      node('Transpose', ['onehot'], ['onehot_t'], { perm: [1, 0] }),
      node('MatMul', ['onehot_t', 'train_x'], ['sums']),
      node('ReduceSum', ['onehot', 'axis0'], ['counts'], { keepdims: 0 }),
      node('Add', ['counts', 'eps'], ['counts_eps']),
      node('Unsqueeze', ['counts_eps', 'axis1'], ['counts_col']),
      node('Div', ['sums', 'counts_col'], ['centroids']),
      node('Transpose', ['centroids'], ['centroids_t'], { perm: [1, 0] }),
      node('MatMul', ['test_x', 'centroids_t'], ['dots']),
      node('Mul', ['dots', 'two'], ['dots2']),
      node('ReduceSumSquare', ['centroids'], ['norms'], { axes: [1], keepdims: 0 }),
      node('Sub', ['dots2', 'norms'], ['raw_logits']),
      node('Equal', ['counts', 'zero'], ['is_absent']),
      node('Cast', ['is_absent'], ['absent_f'], { to: FLOAT }),
      node('Mul', ['absent_f', 'absent'], ['penalty']),
      node('Add', ['raw_logits', 'penalty'], ['test_logits']),
    ],
  };
  const model = onnx.ModelProto.create({ irVersion: 8, producerName: 'tabrecall', opsetImport: [{ domain: '', version: 13 }], graph });
  return onnx.ModelProto.encode(model).finish();
}
