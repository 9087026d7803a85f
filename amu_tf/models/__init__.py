"""The zoo's Keras models (one public class per file) and the registry that names them."""

from amu_tf.models.amu_ft_model import AMUFTModel
from amu_tf.models.amu_model import AMUModel
from amu_tf.models.cnn_model import CNNModel
from amu_tf.models.compass_encoder import CompassEncoder
from amu_tf.models.zoo import ZOO, build_model, list_models, parse_model_name

__all__ = ["AMUFTModel", "AMUModel", "CNNModel", "CompassEncoder", "ZOO", "build_model",
           "list_models", "parse_model_name"]
