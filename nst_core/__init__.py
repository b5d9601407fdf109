"""nst_core: the engine of the neural style transfer lab. Pure Python and PyTorch; no Streamlit."""

from .costs import (FORMULAS, NORMALIZATIONS, content_cost, gram_matrix, scaled_gram,
                    style_layer_cost, total_variation)
from .images import ImageError, load_image, resize_long_side, to_pil, to_tensor
from .model import (ARCHS, LayerInfo, ModelError, VGGFeatures, WeightsUnavailable, layer_table, load_vgg,
                    resolve_device, resolve_layers)
from .transfer import PAPER_STYLE_LAYERS, Step, TransferConfig, cost_terms, prepare_targets, run, stylize

__all__ = [
    "ARCHS", "FORMULAS", "NORMALIZATIONS", "PAPER_STYLE_LAYERS", "ImageError", "LayerInfo", "ModelError",
    "Step", "TransferConfig", "VGGFeatures", "WeightsUnavailable", "content_cost", "cost_terms",
    "gram_matrix", "layer_table", "load_image", "load_vgg", "prepare_targets", "resize_long_side",
    "resolve_device", "resolve_layers", "run", "scaled_gram", "style_layer_cost",
    "stylize", "to_pil", "to_tensor", "total_variation",
]
