"""amu-tf: a Keras 3 / TensorFlow model zoo predicting melanoma response to immune
checkpoint inhibitors from RNA-seq, with TFX-style components and honest evaluation."""

__version__ = "0.1.0"
