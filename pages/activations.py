"""What does layer L see? Channel maps, one unit's receptive field, and the patches it likes best."""

import streamlit as st

from nst_core.analysis import channel_order, layer_shapes, receptive_field_box
from nst_core.describe import describe_model, friendly_number
from nst_core.images import fit_long_side
from ui import frame, layers, network, pickers

frame.enter()

st.title("🔬 What does each layer see?")
st.write("Each layer turns the image into a stack of **channels**: maps of where one learned filter "
         "responds. Shallow layers have small receptive fields and respond to colours and edges; "
         "deeper layers see larger regions and respond to whole textures and object parts.")
frame.try_this("slide the layer from conv1_1 to conv5_1. Watch the maps get coarser, the cyan box grow, and the "
               "top-9 patches change from one colour or edge to a shared texture or shape.")

ss = st.session_state
model = network.current_model()
layers.warm_server(model)  # once per network: the bundled pictures' top-patch index, in the background
content, styles, generated = pickers.chosen_images()
style = styles[0]
pickers.images_caption()
size = ss["size"]
names = layers.index_layers(model)
NEIGHBOURS = 3  # layers shown on each side of the chosen one

st.subheader("The network, layer by layer")
layer = st.select_slider("Layer", names, value="conv3_1" if "conv3_1" in names else names[0], key="act_layer",
                         help="Slide deeper: the maps get coarser (stride) and each unit sees more (receptive field).")
h, w = fit_long_side((content.height, content.width), size)
rows = layer_shapes(model, (h, w))
# The chosen layer and its neighbours, all in view: in a box of the whole network that scrolled, the
# chosen layer was often out of sight. Five narrow columns fit a phone's width without scrolling sideways.
at = next(i for i, r in enumerate(rows) if r["layer"] == layer)
near = rows[max(0, at - NEIGHBOURS):at + NEIGHBOURS + 1]
st.dataframe([{"layer": ("▶ " if r["layer"] == layer else "") + r["layer"],
               "n_H×n_W×n_C": f"{r['n_H']}×{r['n_W']}×{r['n_C']}",
               **{k: r[k] for k in ("receptive field (px)", "stride", "features index")}} for r in near],
             hide_index=True, height=frame.table_height(len(near)), width="stretch",
             column_config={"receptive field (px)": st.column_config.NumberColumn(
                                "field (px)", help="Receptive field: how many pixels across one unit sees."),
                            "features index": st.column_config.NumberColumn(
                                "index", help="Where the layer's output is in torchvision's `vgg.features`.")})
st.caption(f"{layer} and up to {NEIGHBOURS} layers on each side; How it works §6 lists the whole network.")
info = model.table[layer]
st.info(f"**{layer}**: {info.channels} channels on a {h // info.stride}×{w // info.stride} grid for a {w}×{h} image. "
        f"Each unit is {info.stride} px from its neighbour and sees a {info.receptive_field}×{info.receptive_field} px "
        f"patch. As in the paper, conv names mean the output *after* the ReLU (Caffe applied it in place).",
        icon="📏")


labelled = [("content", content), ("style", style)] + ([("generated", generated)] if generated is not None else [])
images, labels = [img for _, img in labelled], [label for label, _ in labelled]
blocks = layers.acts(model, images, layer, (h, w))
order = channel_order(blocks[0])
# Every other layer of these images, nearest first, while the student reads this one.
layers.warm_layers(model, images, labels, (h, w), ss.get("act_n", 16), ss.get("act_scaling", "channel"), layer)
# The student's uploads and latest result join the bundled pictures in the top-9 search.
own = layers.own_pictures(pickers.chosen("content", "content"),
                          [pickers.chosen("style", "style")]
                          + ([pickers.chosen("style2", "style")] if ss["use_second_style"] else []), generated)
layers.warm_own(model, own)


@st.fragment
def maps_section(layer):
    st.subheader("Channel maps")
    c1, c2 = st.columns(2)
    scaling = c1.radio("Colour scale", ["channel", "layer", "global"], horizontal=True, key="act_scaling",
                       format_func={"channel": "per channel", "layer": "per image", "global": "shared by all"}.get,
                       help="Per channel stretches every map; shared makes strong and weak channels comparable.")
    n = c2.select_slider("Channels shown", [4, 9, 16, 25], value=16, key="act_n")
    pictures = layers.grid_pictures(model, images, labels, layer, (h, w), n, scaling)
    for col, picture in zip(st.columns(len(pictures)), pictures):
        col.image(picture, width="stretch")
    st.caption("Channels are sorted by their mean activation on the content image, strongest first; the same "
               "channels are shown for every image, so you can compare them. The colour scale leaves out each "
               "map's outermost ring: the zero padding around the image makes many channels fire along its "
               "edges, and those values would have darkened the rest. There the colour saturates.")
    if generated is None:
        st.caption("Run a stylization on **Stylize** to add the generated image here.")


maps_section(layer)


def top9(layer, channel, pending):
    """The top-9 patches, or how far their search has got; redrawn every 2 s while ``pending``."""
    ready, done, own_ready = layers.index_progress(model, own)
    searched = own if own_ready else ()
    if ready:
        try:
            tiles = layers.top_patches(model, searched, layer, channel)
        except LookupError:  # dropped from memory between the look and the use: wait for the rebuild
            ready = False
    if not ready:
        layers.warm_server(model)
        got = f" ({done[0]} of {done[1]} pictures so far)" if done else ""
        st.info(f"Searching the bundled pictures for every layer's top patches, once for the whole server{got}. "
                "This takes a minute or two when the server has just started; the patches appear here by "
                "themselves.", icon="⏳")
    else:
        st.image([t[0] for t in tiles], caption=[("⭐ " if t[2] else "") + t[1] for t in tiles],
                 width=layers.TILE_PX)
        if own and not own_ready:
            st.caption(f"⏳ Adding your own pictures ({', '.join(n for n, _ in own)}) to the search: they "
                       "join these nine within seconds.")
        elif own:
            st.caption(f"Searched in the bundled pictures and in yours ({', '.join(n for n, _ in own)}); a ⭐ "
                       "marks a patch from one of yours.")
    if pending and ready and own_ready:
        st.rerun()  # once: the page drawn again drops the 2 s refresh


@st.fragment
def unit_section(blocks, layer):
    st.subheader("Zoom into one channel")
    # The widgets' keys carry the layer and its grid: a new layer starts from its own strongest
    # channel and its middle unit, never from a channel number or a row that the layer lacks.
    gh, gw = blocks[0].shape[1], blocks[0].shape[2]
    tag = f"{layer}_{gh}x{gw}"
    c1, c2, c3, c4 = st.columns(4)
    which = c1.selectbox("Image", labels, key="act_which")
    idx = labels.index(which)
    block = blocks[idx]
    channel = int(c2.number_input(f"Channel (0–{info.channels - 1})", 0, info.channels - 1, value=int(order[0]),
                                  key=f"act_channel_{tag}"))
    i = c3.slider("Unit row", 0, gh - 1, gh // 2, key=f"act_i_{tag}")
    j = c4.slider("Unit column", 0, gw - 1, gw // 2, key=f"act_j_{tag}")
    box = receptive_field_box(info, i, j, (h, w))
    col, text = st.columns(2)
    # Drawn once per image and channel; moving to another unit only outlines its field.
    picture = layers.overlay(model, images, labels, (h, w), idx, layer, channel)
    col.image(picture.with_rect(box, colour="#00e5ff"), width="stretch")
    text.markdown(f"The colours show where channel {channel} responds. The cyan box is everything the unit at "
                  f"row {i}, column {j} can see: a {info.receptive_field} px receptive field. Its activation "
                  f"there is **{friendly_number(float(block[channel, i, j]))}** (strongest anywhere on this image: "
                  f"{friendly_number(float(block[channel].max()))}).\n\nOn shallow layers the box is a few pixels, "
                  "enough for an edge or a colour. On conv4 and conv5 it covers a large part of the image, so a "
                  "unit can respond to an eye or a whole wheel.")

    st.subheader(f"Which patches excite channel {channel} most?")
    scales = layers.index_scales(model)
    at = f"each at {len(scales)} sizes ({', '.join(map(str, scales))} px)" if len(scales) > 1 else f"at {scales[0]} px"
    st.write("Following Zeiler & Fergus (2013): search every bundled photo and painting, and your own pictures "
             f"(uploads and your latest result), {at}, for the places where this channel responds "
             "most. Each picture below shows one place with the unit's receptive field boxed in cyan, under its "
             "activation and the picture it comes from; no two show the same place, and no picture gives more "
             "than three. Places at a picture's very edge are left out: there the unit also sees the black frame "
             "the network pads every image with.")
    c1, c2 = st.columns(2)
    with c1:
        ready, _, own_ready = layers.index_progress(model, own)
        pending = not (ready and own_ready)
        st.fragment(top9, run_every=2.0 if pending else None)(layer, channel, pending)
    c2.markdown("**Look for:** on **conv1_1** the boxes are tiny, and the nine share one colour or one edge "
                "direction. On **conv3_1** the boxes grow and most of the nine share a colour and a texture, found in different "
                "pictures. Change the channel to see another unit's taste.")
    field = model.table["conv5_1"].receptive_field
    c2.markdown(f"**On conv5_1** a unit sees {field}×{field} px: most of a picture searched at 160 px, half of one "
                "at 256 px. Each of its nine is a large part of a scene, and the nine can look unrelated. What they "
                "share is an arrangement spread over the field (where the strong outlines and textures lie), not one object you could point at. Zeiler & Fergus "
                "searched over a million photos; among the few pictures here, the nearest matches are loose.")
    if not model.trained:
        c2.warning("These are random weights: the patterns are not learned ones.", icon="🎲")
    else:
        c2.caption(f"🧠 {describe_model(model)}")


unit_section(blocks, layer)
