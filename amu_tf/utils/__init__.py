"""Utilities that are not part of a model, a layer or a transform (converters of foreign
checkpoints into the zoo's weights)."""
