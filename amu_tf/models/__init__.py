"""The zoo's Keras models (one public class per file) and the registry that names them."""

from amu_tf.models.amu_ft_model import AMUFTModel
from amu_tf.models.amu_model import AMUModel
from amu_tf.models.cnn_model import CNNModel
from amu_tf.models.zoo import ZOO, build_model, list_models, parse_model_name

__all__ = ["AMUFTModel", "AMUModel", "CNNModel", "ZOO", "build_model", "list_models",
           "parse_model_name"]
