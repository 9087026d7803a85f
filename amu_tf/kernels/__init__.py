"""Compiled CPU kernels, built on first use; everything works without them, slower.

``amu_tf.kernels.tiny_attention``: the training-time attention op for many tiny heads.
"""
