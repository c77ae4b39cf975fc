"""TensorFlow graphs to ONNX through tf2onnx, in memory bounded by the model.

tf2onnx converts and optimizes a graph with its weights inside it, and its two dozen optimizer
passes copied them again and again (SE-ResNet-50, 112 MB of weights, peaked at 12.5 GB;
SENet-154 at about 18 GB). Here the weights are set aside before TensorFlow's graph optimizer runs
(`set_weights_aside`) and enter the converter as graph inputs, so neither Grappler nor tf2onnx
ever holds them; what tf2onnx would have done to them as constants is then done to the numpy
arrays: the kernels' layout changes (`take_weights`), the BatchNorm scales and shifts folded
into the convolutions (`fold_into_convolutions`), equal weights stored once
(`merge_duplicate_weights`). The file is written a weight at a time (`write_onnx`), and its
input and output are named for what they are (`name_onnx_interface`).

Example:
>>> import pathlib, tempfile, onnxruntime, numpy as np, tensorflow as tf
>>> kernel = tf.constant(np.ones((3, 3, 8, 128), "float32"))
>>> function = tf.function(lambda images: tf.nn.conv2d(images, kernel, 1, "SAME") * 2.0)
>>> concrete = function.get_concrete_function(tf.TensorSpec((None, 8, 8, 8), name="images"))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "conv.onnx"
>>> convert(frozen_graph_def(concrete), ["images:0"], ["Identity:0"], path, opset=15)
15
>>> session = onnxruntime.InferenceSession(str(path))
>>> float(session.run(None, {"images": np.ones((1, 8, 8, 8), "float32")})[0][0, 4, 4, 0])
144.0
"""

from keras_se import memory

# What an ONNX file's input, output and their dynamic batch dimension are called (tf2onnx
# leaves the TensorFlow names: `images:0`, `Identity:0`, `unk__263`).
ONNX_NAMES = {"input": "images", "output": "predictions", "batch": "batch"}


def convert(graph_def, input_names, output_names, path, opset):
    """Write the ONNX file of a frozen GraphDef (emptied as it goes) to `path`, return its
    opset.

    `input_names` and `output_names` are the tensor names of the graph's one input and its
    outputs (`images:0`, `Identity:0`).
    """
    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader, tfonnx

    graph_def, weights = set_weights_aside(graph_def)
    memory.release()
    weight_names = [f"{name}:0" for name in weights]
    with tf.Graph().as_default():
        graph_def = tf_loader.tf_optimize(input_names + weight_names, output_names, graph_def)
    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(graph_def, name="")
        del graph_def
        onnx_graph = tfonnx.process_tf_graph(
            tf_graph,
            continue_on_error=True,
            opset=opset,
            input_names=input_names + weight_names,
            output_names=output_names,
        )
    del tf_graph
    onnx_graph = optimizer.optimize_graph(onnx_graph, catch_errors=True)
    model_proto = onnx_graph.make_model("converted from Keras by keras-se")
    opset = onnx_graph.opset
    del onnx_graph
    arrays = take_weights(model_proto.graph, weights)
    fold_into_convolutions(model_proto.graph, arrays)
    merge_duplicate_weights(model_proto.graph, arrays)
    write_onnx(name_onnx_interface(model_proto), arrays, path)
    del model_proto
    memory.release()
    return opset


def frozen_graph_def(concrete):
    """The GraphDef of a concrete function with its variables as constants.

    TensorFlow's `convert_variables_to_constants_v2` also builds and registers a new concrete
    function from that GraphDef, which keeps several more copies of the weights alive in the
    eager context (0.9 GB for SE-ResNet-50's 112 MB); only the GraphDef is needed here.

    Example:
    >>> import tensorflow as tf
    >>> weight = tf.Variable([2.0])
    >>> concrete = tf.function(lambda x: x * weight).get_concrete_function(tf.TensorSpec([1]))
    >>> sorted(node.op for node in frozen_graph_def(concrete).node)
    ['Const', 'Identity', 'Identity', 'Mul', 'NoOp', 'Placeholder']
    """
    from tensorflow.python.framework import convert_to_constants

    data = convert_to_constants._FunctionConverterDataInEager(
        func=concrete, lower_control_flow=False, aggressive_inlining=True
    )
    graph_def, _ = convert_to_constants._replace_variables_by_constants(converter_data=data)
    return graph_def


def set_weights_aside(graph_def, threshold=65536):
    """Split a frozen GraphDef into its weights and the graph without them.

    Every constant of `threshold` bytes or more (the weights) becomes a placeholder of the same
    name, dtype and shape, and its value goes into the returned dict; the smaller constants
    (BatchNorm vectors, shapes) stay. `graph_def` is emptied, so that the weights are not kept
    twice.

    Example:
    >>> import numpy as np, tensorflow as tf
    >>> kernel = np.arange(128 * 256, dtype="float32").reshape(128, 256)
    >>> graph = tf.function(lambda x: x @ tf.constant(kernel)).get_concrete_function(
    ...     tf.TensorSpec([1, 128], name="x")).graph.as_graph_def()
    >>> light, weights = set_weights_aside(graph, threshold=1024)
    >>> [(name, tf.make_ndarray(value).shape) for name, value in weights.items()]
    [('Const', (128, 256))]
    >>> sorted(node.op for node in light.node)
    ['Identity', 'MatMul', 'Placeholder', 'Placeholder']
    """
    from tensorflow.core.framework import graph_pb2, tensor_pb2

    weights, light = {}, graph_pb2.GraphDef()
    light.versions.CopyFrom(graph_def.versions)
    light.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        value = node.attr["value"].tensor if node.op == "Const" else None
        if value is None or len(value.tensor_content) < threshold:
            light.node.add().CopyFrom(node)
            continue
        weights[node.name] = tensor_pb2.TensorProto()
        weights[node.name].CopyFrom(value)
        placeholder = light.node.add(name=node.name, op="Placeholder", device=node.device)
        placeholder.attr["dtype"].type = value.dtype
        placeholder.attr["shape"].shape.CopyFrom(value.tensor_shape)
    graph_def.Clear()
    return light, weights


def take_weights(graph_proto, weights):
    """The weights of a graph converted with its weights as inputs, as numpy arrays by name.

    The graph inputs named after `weights` (a dict of TensorFlow TensorProtos, emptied as it
    goes) leave the graph; their values are returned under the same names, to be written as
    initializers (`write_onnx`). A `Transpose` or `Reshape` that the converter put on a weight
    used once (the kernel layouts) is applied to the array and leaves the graph, as tf2onnx
    does for the constants it sees.

    Example:
    >>> import numpy as np, onnx, tensorflow as tf
    >>> kernel = np.arange(6, dtype="float32").reshape(2, 3)
    >>> node = onnx.helper.make_node("Transpose", ["w:0"], ["wt"], perm=[1, 0])
    >>> matmul = onnx.helper.make_node("MatMul", ["x", "wt"], ["y"])
    >>> value = lambda name, shape: onnx.helper.make_tensor_value_info(name, 1, shape)
    >>> graph = onnx.helper.make_graph([node, matmul], "g", [value("x", [1, 3]),
    ...     value("w:0", [2, 3])], [value("y", [1, 2])])
    >>> arrays = take_weights(graph, {"w": tf.make_tensor_proto(kernel)})
    >>> [value.name for value in graph.input], [node.op_type for node in graph.node]
    (['x'], ['MatMul'])
    >>> {name: array.shape for name, array in arrays.items()}
    {'wt': (3, 2)}
    """
    import numpy as np
    import tensorflow as tf
    from onnx import numpy_helper

    inputs = [value for value in graph_proto.input if value.name.rsplit(":", 1)[0] not in weights]
    stored = [value.name for value in graph_proto.input if value not in inputs]
    del graph_proto.input[:]
    graph_proto.input.extend(inputs)
    arrays = {name: tf.make_ndarray(weights.pop(name.rsplit(":", 1)[0])) for name in stored}
    consumers = _consumers(graph_proto)
    constants = {tensor.name: tensor for tensor in graph_proto.initializer}
    layouts = []
    for node in graph_proto.node:
        source = node.input[0] if node.input else None
        if source not in arrays or len(consumers[source]) != 1:
            continue
        if node.op_type == "Transpose":
            (perm,) = [list(attribute.ints) for attribute in node.attribute]
            arrays[node.output[0]] = np.transpose(arrays.pop(source), perm)
        elif node.op_type == "Reshape" and node.input[1] in constants:
            shape = numpy_helper.to_array(constants[node.input[1]])
            arrays[node.output[0]] = np.reshape(arrays.pop(source), shape)
        else:
            continue
        layouts.append(node)
    for node in layouts:
        graph_proto.node.remove(node)
    return arrays


def _consumers(graph_proto):
    """The nodes reading each tensor name."""
    consumers = {}
    for node in graph_proto.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def fold_into_convolutions(graph_proto, arrays):
    """Fold the per-channel `Mul` and `Add` that follow a `Conv` (a BatchNorm in inference)
    into the Conv's weight and bias, as tf2onnx does when it sees the weights.

    `arrays` holds the weights (`take_weights`); multipliers and addends may also be the
    graph's own initializers. Only where the Conv's output goes to that one node alone, the
    multiplier or addend has the shape `(1, C, 1, 1)` or `(C, 1, 1)`, and the Conv's weight
    and bias are in `arrays` and used by no other node. A folded bias goes into `arrays`;
    initializers no longer used leave the graph.

    Example:
    >>> import numpy as np, onnx
    >>> from onnx import numpy_helper
    >>> scale = numpy_helper.from_array(np.array([2, 3], "float32").reshape(1, 2, 1, 1), "s")
    >>> nodes = [onnx.helper.make_node("Conv", ["x", "w"], ["c"]),
    ...          onnx.helper.make_node("Mul", ["c", "s"], ["m"]),
    ...          onnx.helper.make_node("Add", ["t", "m"], ["y"])]
    >>> value = lambda name: onnx.helper.make_tensor_value_info(name, 1, None)
    >>> graph = onnx.helper.make_graph(nodes, "g", [value("x")], [value("y")], [scale])
    >>> arrays = {"w": np.ones((2, 1, 1, 1), "float32"), "t": np.ones((2, 1, 1), "float32")}
    >>> fold_into_convolutions(graph, arrays)
    >>> [(node.op_type, list(node.input), list(node.output)) for node in graph.node]
    [('Conv', ['x', 'w', 'w/bias'], ['y'])]
    >>> {name: array.ravel().tolist() for name, array in arrays.items()}, len(graph.initializer)
    ({'w': [2.0, 3.0], 'w/bias': [1.0, 1.0]}, 0)
    """
    import numpy as np
    from onnx import numpy_helper

    constants = {tensor.name: tensor for tensor in graph_proto.initializer}
    consumers = _consumers(graph_proto)
    outputs = {value.name for value in graph_proto.output}

    def constant(name):
        if name in arrays:
            return arrays[name]
        return numpy_helper.to_array(constants[name]) if name in constants else None

    folded = []
    for conv in graph_proto.node:
        names = list(conv.input[1:])
        if conv.op_type != "Conv" or not all(
            name in arrays and len(consumers[name]) == 1 for name in names
        ):
            continue
        weight = arrays[names[0]]
        channels = weight.shape[0]
        bias = arrays[names[1]] if len(names) > 1 else np.zeros(channels, weight.dtype)
        while conv.output[0] not in outputs and len(consumers.get(conv.output[0], ())) == 1:
            (user,) = consumers[conv.output[0]]
            others = [name for name in user.input if name != conv.output[0]]
            if user.op_type not in ("Mul", "Add") or len(others) != 1:
                break
            value = constant(others[0])
            if value is None or value.shape not in ((1, channels, 1, 1), (channels, 1, 1)):
                break
            value = value.reshape(channels).astype(weight.dtype)
            if user.op_type == "Mul":
                weight = weight * value.reshape(-1, *[1] * (weight.ndim - 1))
                bias = bias * value
            else:
                bias = bias + value
            conv.output[0] = user.output[0]
            folded.append(user)
            if len(names) == 1:
                names.append(f"{names[0]}/bias")
                conv.input.append(names[1])
            arrays[names[0]], arrays[names[1]] = weight, bias
    for node in folded:
        graph_proto.node.remove(node)
    used = {name for node in graph_proto.node for name in node.input}
    unused = [tensor for tensor in graph_proto.initializer if tensor.name not in used]
    for tensor in unused:
        graph_proto.initializer.remove(tensor)
    for name in set(arrays) - used:
        del arrays[name]


def merge_duplicate_weights(graph_proto, arrays):
    """Store each distinct weight once: arrays equal in dtype, shape and every value become
    one, which all their nodes read (as tf2onnx merges equal constants).

    Example:
    >>> import numpy as np, onnx
    >>> nodes = [onnx.helper.make_node("Add", ["x", "a"], ["y"]),
    ...          onnx.helper.make_node("Add", ["y", "b"], ["z"])]
    >>> value = lambda name: onnx.helper.make_tensor_value_info(name, 1, None)
    >>> graph = onnx.helper.make_graph(nodes, "g", [value("x")], [value("z")])
    >>> arrays = {"a": np.ones(3, "float32"), "b": np.ones(3, "float32")}
    >>> merge_duplicate_weights(graph, arrays)
    >>> [list(node.input) for node in graph.node], list(arrays)
    ([['x', 'a'], ['y', 'a']], ['a'])
    """
    import hashlib

    import numpy as np

    first = {}
    renames = {}
    for name, array in arrays.items():
        digest = hashlib.blake2b(np.ascontiguousarray(array).data).digest()
        key = (array.dtype.str, array.shape, digest)
        if key in first and np.array_equal(arrays[first[key]], array):
            renames[name] = first[key]
        else:
            first.setdefault(key, name)
    for node in graph_proto.node:
        for index, name in enumerate(node.input):
            node.input[index] = renames.get(name, name)
    for name in renames:
        del arrays[name]


def write_onnx(model_proto, arrays, path):
    """Write `model_proto` with `arrays` (numpy arrays by name) added to its graph's
    initializers, one initializer at a time.

    `SerializeToString` would build the whole file in memory next to the weights; protobuf
    lets a message's fields come in any order and a repeated field in pieces, so the model
    without the weights is written first and each weight is serialized as it is written.
    `arrays` is emptied as it goes.

    Example:
    >>> import numpy as np, onnx, pathlib, tempfile
    >>> node = onnx.helper.make_node("Add", ["x", "w"], ["y"])
    >>> value = lambda name: onnx.helper.make_tensor_value_info(name, 1, [2])
    >>> model = onnx.helper.make_model(onnx.helper.make_graph(
    ...     [node], "g", [value("x")], [value("y")]))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
    >>> write_onnx(model, {"w": np.array([1.0, 2.0], "float32")}, path)
    >>> written = onnx.load(str(path))
    >>> onnx.numpy_helper.to_array(written.graph.initializer[0]).tolist(), written.graph.node[0]
    ([1.0, 2.0], input: "x"
    input: "w"
    output: "y"
    op_type: "Add"
    )
    """
    import onnx
    from onnx import numpy_helper

    initializer = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
    graph_field = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number

    def field(number, length):  # a length-delimited field's tag and length
        return _varint(number << 3 | 2) + _varint(length)

    graph = model_proto.graph
    # Each weight's serialized size, one at a time (a TensorProto is a copy of its array).
    lengths = [numpy_helper.from_array(array, name).ByteSize() for name, array in arrays.items()]
    graph_head = graph.SerializeToString()
    model_head = _without_field(model_proto, "graph").SerializeToString()
    graph_length = len(graph_head) + sum(len(field(initializer, n)) + n for n in lengths)
    with open(path, "wb") as file:
        file.write(model_head)
        file.write(field(graph_field, graph_length))
        file.write(graph_head)
        for name in list(arrays):
            tensor = numpy_helper.from_array(arrays.pop(name), name).SerializeToString()
            file.write(field(initializer, len(tensor)))
            file.write(tensor)


def _varint(number):
    """Protobuf's variable-length encoding of a non-negative integer."""
    encoded = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        encoded.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(encoded)


def _without_field(message, field_name):
    """A copy of a protobuf message without one of its fields (not copied at all)."""
    copy = type(message)()
    for descriptor, value in message.ListFields():
        if descriptor.name == field_name:
            continue
        if hasattr(value, "extend"):  # a repeated field
            getattr(copy, descriptor.name).extend(value)
        elif hasattr(value, "ListFields"):  # a message
            getattr(copy, descriptor.name).CopyFrom(value)
        else:
            setattr(copy, descriptor.name, value)
    return copy


def name_onnx_interface(model_proto):
    """Rename the graph's one input and one output to `ONNX_NAMES` and give their first
    dimension the symbolic name `batch`, everywhere the graph refers to them.

    Example:
    >>> import onnx
    >>> node = onnx.helper.make_node("Relu", ["images:0"], ["Identity:0"])
    >>> value = lambda name: onnx.helper.make_tensor_value_info(name, 1, ["unk__1", 4])
    >>> graph = onnx.helper.make_graph([node], "g", [value("images:0")], [value("Identity:0")])
    >>> model = name_onnx_interface(onnx.helper.make_model(graph))
    >>> node, output = model.graph.node[0], model.graph.output[0]
    >>> list(node.input), list(node.output), output.type.tensor_type.shape.dim[0].dim_param
    (['images'], ['predictions'], 'batch')
    """
    graph = model_proto.graph
    renames = {graph.input[0].name: ONNX_NAMES["input"], graph.output[0].name: ONNX_NAMES["output"]}
    used = {name for node in graph.node for name in (*node.input, *node.output)}
    if (used | {t.name for t in graph.initializer}) & (set(renames.values()) - set(renames)):
        return model_proto  # a graph that already uses the names: left as the converter wrote it
    for node in graph.node:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                names[index] = renames.get(name, name)
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = renames.get(value.name, value.name)
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = ONNX_NAMES["batch"]
    return model_proto
