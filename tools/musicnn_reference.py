"""Write the reference fixtures of ``tests/test_qa_timbre.py`` with TensorFlow and musicnn.

Run in a separate environment (never the project's; TensorFlow 2.15 needs numpy < 2)::

    python3.11 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1 librosa==0.10.2.post1 "numpy<2"
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfenv/bin/python tools/musicnn_reference.py tests/fixtures

Writes, from the reference code only (this script imports nothing of copdata):

* ``tfckpt_tiny.index`` / ``tfckpt_tiny.data-00000-of-00001``: a TensorFlow
  checkpoint of 300 small variables (float32, float64, float16, int32, int64,
  bool; scalars to rank 4; names sharing long prefixes, so the index holds
  several prefix-compressed blocks), and ``tfckpt_tiny.json`` with every
  variable's values as TensorFlow reads them back;
* ``musicnn_reference.json``: musicnn's MTT_musicnn logits and
  ``penultimate`` features (the 200 units after the back-end's batch norm) on
  seeded random log-mel patches (``tf.compat.v1`` graph of ``musicnn.models``,
  the package's weights), and the taggram and ``penultimate`` features of
  ``musicnn.extractor.extractor`` on a seeded
  synthetic tone sequence written as a 16 kHz WAV (the audio's recipe is
  :func:`tone_sequence`, restated in the test). Note: the extractor's
  ``penultimate`` repeats the first patch's value for every later patch (its
  loop unpacks the batch's features as ``backend_`` but appends the first
  batch's ``penultimate_``); only its first row is each patch's own.
"""

import json
import os
import sys

import numpy as np


def tone_sequence(seconds: float = 7.0, sr: int = 16000) -> np.ndarray:
    """Seeded decaying harmonic tones (float32), the input of the extractor check."""
    rng = np.random.default_rng(20261207)
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for start in np.arange(0.0, seconds - 0.5, 0.25):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 3.0), 0.0)
        for k in range(1, 6):
            out += env * np.sin(2 * np.pi * f0 * k * (t - start)) / k
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def tiny_checkpoint(out_dir: str) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(7)
    values = {}
    dtypes = [np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_]
    for i in range(300):
        dtype = dtypes[i % len(dtypes)]
        shape = [(), (3,), (2, 3), (2, 1, 3), (1, 2, 2, 2)][i % 5]
        if dtype == np.bool_:
            v = rng.integers(0, 2, shape).astype(bool)
        elif np.issubdtype(dtype, np.integer):
            v = rng.integers(-1000, 1000, shape).astype(dtype)
        else:
            v = rng.normal(size=shape).astype(dtype)
        values[f"model/block_{i // 10:02d}/layer_{i:03d}/variable"] = v
    tf.compat.v1.reset_default_graph()
    with tf.compat.v1.Session() as sess:
        tvars = [tf.compat.v1.Variable(v, name=n.rsplit("/", 0)[0].replace("/variable", "") + "/variable")
                 for n, v in values.items()]
        sess.run(tf.compat.v1.global_variables_initializer())
        prefix = os.path.join(out_dir, "tfckpt_tiny")
        tf.compat.v1.train.Saver(tvars).save(sess, prefix, write_meta_graph=False,
                                             write_state=False)
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    dump = {}
    for name in reader.get_variable_to_shape_map():
        v = reader.get_tensor(name)
        dump[name] = {"dtype": str(v.dtype), "shape": list(v.shape), "values": v.ravel().tolist()}
    with open(prefix + ".json", "w") as f:
        json.dump(dump, f)


def musicnn_reference(out_dir: str) -> None:
    import librosa
    import soundfile
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    import musicnn
    from musicnn import models
    from musicnn.extractor import extractor

    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, penultimate = models.define_model(x, is_training, "MTT_musicnn", 50)
    sess = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(sess, os.path.dirname(musicnn.__file__) + "/MTT_musicnn/")
    patches = np.random.default_rng(11).uniform(0.0, 4.0, (3, 187, 96)).astype(np.float32)
    patch_logits, patch_penultimate = sess.run([logits, penultimate],
                                               {x: patches, is_training: False})
    wav = os.path.join(out_dir, "_tones.wav")
    soundfile.write(wav, tone_sequence(), 16000, subtype="FLOAT")
    taggram, labels, features = extractor(wav, model="MTT_musicnn", extract_features=True)
    os.remove(wav)
    with open(os.path.join(out_dir, "musicnn_reference.json"), "w") as f:
        json.dump({"patch_seed": 11, "patch_logits": patch_logits.tolist(),
                   "patch_penultimate": patch_penultimate.tolist(),
                   "tones_taggram": np.asarray(taggram).tolist(), "labels": list(labels),
                   "tones_penultimate": np.asarray(features["penultimate"]).tolist(),
                   "versions": {"tensorflow": tf.__version__, "librosa": librosa.__version__,
                                "numpy": np.__version__}}, f)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tiny_checkpoint(out)
    musicnn_reference(out)
    print("wrote", sorted(os.listdir(out)))
