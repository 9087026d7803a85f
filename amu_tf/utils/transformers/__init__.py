"""Converters of published pre-trained checkpoints into Keras weights of the zoo's models,
one file per source model (as keras-hub's ``utils/transformers``)."""
