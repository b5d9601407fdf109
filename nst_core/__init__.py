"""nst_core: the engine of the neural style transfer lab. Pure Python and PyTorch; no Streamlit."""

from .lazy import exports

__getattr__, __all__ = exports(__name__, {
    ".costs": ("FORMULAS", "NORMALIZATIONS", "content_cost", "gram_matrix", "scaled_gram", "style_layer_cost",
               "total_variation"),
    ".images": ("ImageError", "load_image", "resize_long_side", "to_pil", "to_tensor"),
    ".model": ("ARCHS", "LayerInfo", "ModelError", "VGGFeatures", "WeightsUnavailable", "layer_table", "load_vgg",
               "resolve_device", "resolve_layers"),
    ".step": ("Step",),
    ".transfer": ("PAPER_STYLE_LAYERS", "TransferConfig", "cost_terms", "prepare_targets", "run", "stylize"),
})
