"""magenta's NSynth and GANSynth graphs written again in TensorFlow ops, from its source, to
check the imported audiozoo models against: models/nsynth/wavenet/h512_bo16.py
(`Config.build`), wavenet/masked.py (`conv1d`, `time_to_batch`, `shift_right`, `pool1d`),
nsynth/utils.py (`mu_law`), and models/gansynth/lib/networks.py (`generator`), layers.py
(`pixel_norm`, `upscale`, `custom_conv2d`) and data_normalizer.py (the prespecified
normaliser). Also: writing TF1 checkpoints with given variables, as tf.train.Saver does."""

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1


def write_checkpoint(prefix, arrays: dict, global_step: int | None = None) -> str:
    """A name-based TF1 checkpoint holding `arrays` {variable name: value}."""
    with tf.Graph().as_default():
        for name, value in arrays.items():
            tf1.get_variable(name, initializer=np.asarray(value))
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return saver.save(sess, str(prefix), global_step=global_step, write_meta_graph=False)


def random_weights(shapes: dict, seed: int = 0) -> dict:
    """Kernels ~ N(0, 1 / fan_in) (so activations stay O(1) through the layers), biases
    ~ N(0, 0.1): nothing trivially zero."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 0
        scale = 1.0 / np.sqrt(fan_in) if fan_in else 0.1
        weights[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return weights


# ---- NSynth (h512_bo16.py) --------------------------------------------------------------

def mu_law(x, mu=255):
    out = tf.sign(x) * tf.math.log(1 + mu * tf.abs(x)) / np.log(1 + mu)
    return tf.floor(out * 128)


def time_to_batch(x, block):
    b, t, c = x.shape
    y = tf.reshape(x, [b, t // block, block, c])
    return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [b * block, t // block, c])


def batch_to_time(x, block):
    b, t, c = x.shape
    y = tf.reshape(x, [b // block, block, t, c])
    return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [b // block, t * block, c])


def conv1d(x, w, name, dilation=1, causal=True):
    """masked.conv1d with the checkpoint's `name/W` [1, k, in, out] and `name/biases`."""
    kernel, bias = w[f"{name}/W"], w[f"{name}/biases"]
    batch, length, _ = x.shape
    y = time_to_batch(x, dilation)
    if kernel.shape[1] > 1 and causal:
        y = tf.pad(y, [[0, 0], [kernel.shape[1] - 1, 0], [0, 0]])
    y = tf.nn.conv2d(y[:, None], kernel, [1, 1, 1, 1], "VALID" if causal else "SAME")
    y = tf.nn.bias_add(y, bias)[:, 0]
    return batch_to_time(y, dilation)


def nsynth_encode(wav, w, shape):
    """Config.build's encoder: wav [batch, time] -> encoding [batch, time / hop, 16]."""
    x = tf.expand_dims(mu_law(wav) / 128.0, 2)
    en = conv1d(x, w, "ae_startconv", causal=False)
    for i in range(shape.ae_layers):
        d = conv1d(tf.nn.relu(en), w, f"ae_dilatedconv_{i + 1}", 2 ** (i % shape.ae_stages),
                   causal=False)
        en += conv1d(tf.nn.relu(d), w, f"ae_res_{i + 1}")
    en = conv1d(en, w, "ae_bottleneck")
    batch, length, depth = en.shape
    return tf.reduce_mean(tf.reshape(en, [batch, -1, shape.hop_length, depth]), axis=2)


def condition(x, encoding):
    """Config._condition: each frame added to its hop of samples."""
    mb, length, channels = x.shape
    frames = encoding.shape[1]
    x = tf.reshape(x, [mb, frames, -1, channels]) + tf.reshape(encoding, [mb, frames, 1, channels])
    return tf.reshape(x, [mb, length, channels])


def nsynth_decode(wav, encoding, w, shape):
    """Config.build's decoder: the logits [batch, time, 256] of every sample given the
    previous ones (shift_right) and the encoding."""
    x = tf.expand_dims(mu_law(wav) / 128.0, 2)
    l = conv1d(tf.pad(x, [[0, 0], [1, 0], [0, 0]])[:, :-1], w, "startconv")
    s = conv1d(l, w, "skip_start")
    for i in range(shape.layers):
        d = conv1d(l, w, f"dilatedconv_{i + 1}", 2 ** (i % shape.stages))
        d = condition(d, conv1d(encoding, w, f"cond_map_{i + 1}"))
        m = d.shape[2] // 2
        d = tf.sigmoid(d[:, :, :m]) * tf.tanh(d[:, :, m:])
        l += conv1d(d, w, f"res_{i + 1}")
        s += conv1d(d, w, f"skip_{i + 1}")
    s = conv1d(tf.nn.relu(s), w, "out1")
    s = tf.nn.relu(condition(s, conv1d(encoding, w, "cond_map_out1")))
    return conv1d(s, w, "logits")


# ---- GANSynth (networks.py generator, layers.py) -----------------------------------------

def pixel_norm(x):
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=3, keepdims=True) + 1e-8)


def upscale(x, scale):
    if scale == 1:
        return x
    return tf1.batch_to_space(tf.tile(x, [scale ** 2, 1, 1, 1]), crops=[[0, 0], [0, 0]],
                              block_size=scale)


def custom_conv2d(x, w, scope, padding="SAME", slope=0.0):
    kernel = w[f"{scope}/conv2d/kernel"]
    scale = np.sqrt(2.0 / ((1.0 + slope ** 2) * np.prod(kernel.shape[:-1])))
    return scale * tf.nn.conv2d(x, kernel, 1, padding) + w[f"{scope}/bias"]


def gansynth_generate(z, one_hot, progress, num_blocks, w, flags, prefix):
    """networks.generator (scope prefix `prefix`, e.g. the EMA's names) then the
    prespecified normaliser's denormalize_op: raw spectrograms [batch, h, w, 2]."""
    h, wd = flags["start_height"], flags["start_width"]

    def conv(x, scope, padding="SAME"):  # every hidden conv: lrelu 0.2, then pixel norm
        return pixel_norm(tf.nn.leaky_relu(custom_conv2d(x, w, prefix(scope), padding)))

    x = pixel_norm(tf.concat([z, one_hot], axis=1)[:, None, None, :])
    x = tf.pad(x, [[0, 0], [h - 1, h - 1], [wd - 1, wd - 1], [0, 0]])
    x = conv(conv(x, "progressive_gan_block_1/conv0", "VALID"), "progressive_gan_block_1/conv1")
    lods = [x]
    for b in range(2, num_blocks + 1):
        x = upscale(x, 2)
        x = conv(conv(x, f"progressive_gan_block_{b}/conv0"), f"progressive_gan_block_{b}/conv1")
        lods.append(x)
    out = 0.0
    for b in range(1, num_blocks + 1):
        rgb = tf.tanh(custom_conv2d(lods[b - 1], w, prefix(f"progressive_gan_block_{b}/to_rgb"),
                                    slope=1.0))
        rgb = upscale(rgb, 2 ** (flags["num_resolutions"] - b))
        out += tf.maximum(0.0, tf.minimum(progress - (b - 2), b - progress)) * rgb
    a = np.array([flags["mag_normalizer_a"], flags["p_normalizer_a"]], np.float32)
    b = np.array([flags["mag_normalizer_b"], flags["p_normalizer_b"]], np.float32)
    return (out - b) / a
