"""Which kernel a library runs for a layer, and how it walks its input and output: read from each
library's code, for the overlaps of mcudeploy.codegen.access_order.

A `Release` is a library whose kernels were read: the files read (by SHA-256), the wrapper's
dispatch (which kernel runs a layer on a CPU class) and that kernel's `Walk`. A library is taken
for a release only when every one of those files is byte-identical to a version that was read;
any other (another release, a patched file, nnref changed since) gets no overlap until its code
is read and added here. tests/test_overlap.py checks nnref's files are the ones read, and runs
overlapped layers on QEMU bit-exact with the host reference and TFLM, through nnref and Arm's
kernels.

The releases read: nnref, Arm's CMSIS-NN 4.0.0 (and the bakenn wheel's copy of it) and 7.0.0.
mcudeploy's generated kernels (mcd_kernels; `GENERATED`) are read the same way: a layer lowered as
one takes its overlap when its template, _mcd.j2 and mcdk's headers are the versions read.
Their headers' inline helpers the kernels use (arm_memcpy_s8, arm_nn_read_s8x4, ...) copy or read
the bytes they are given; the kernels take no `restrict` pointers to their input and output
(7.0.0's OPTIONAL_RESTRICT_KEYWORD is empty unless defined, and mcudeploy does not define it).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mcudeploy.codegen.access_order import Walk, Window, overlap_shift, ring_shift
from mcudeploy.codegen.lower import Dims, Layer
from mcudeploy.codegen.mcd_kernels import HEADERS
from mcudeploy.nnlib import NNLibrary, per_content
from mcudeploy.resources import firmware_dir

Dispatch = Callable[[Layer, str], Walk | None]


@dataclass(frozen=True)
class Release:
    """A library whose kernels' access order was read from its code: `files` maps each file read
    (by name) to the SHA-256 digests of the versions read; `conv` and `depthwise` give the walk of
    the kernel that the wrapper calls for a layer on a CPU class (None: no overlap)."""

    name: str
    files: dict[str, frozenset[str]]
    conv: Dispatch
    depthwise: Dispatch


PER_PIXEL = Walk(1, reads_first=False)

# nnref: arm_convolve_wrapper_s8 and arm_depthwise_conv_wrapper_s8 are the kernels. Both loop over
# batch, output row, output column; for each pixel they read the rows and columns of its window
# that lie inside the input (arm_nn_kernel_range), of the channel group (convolution) or channel
# block (depthwise) being computed, and write that pixel's output channels before the next pixel.
NNREF = Release(
    "nnref",
    {"arm_convolve_wrapper_s8.c": frozenset({
        "aaf4e9ec1e5a9d944bb58459f99c525b748e54af3bebb609a4aea22f945070d0"}),
     "arm_depthwise_conv_wrapper_s8.c": frozenset({
         "406438a461bec7d9b59e28c27576394d002e57ea32f2c12ca92070680b3fba59"})},
    conv=lambda layer, cpu: PER_PIXEL,
    depthwise=lambda layer, cpu: PER_PIXEL,
)



def _shape(layer: Layer) -> dict:
    """What the convolution wrappers test to dispatch."""
    v = layer.values
    f, x, y = v["filter_dims"], v["input_dims"], v["output_dims"]
    pointwise = (f.h, f.w) == (1, 1) and tuple(v["padding"]) == (0, 0) and tuple(v["dilation"]) == (1, 1)
    return {"pointwise": pointwise, "unit_stride": tuple(v["stride"]) == (1, 1), "grouped": x.c != f.c,
            "row": y.w, "x": x, "f": f, "v": v}


# Arm's CMSIS-NN 4.0.0 (also as the bakenn wheel vendors it: its four changed files change includes
# and an attribute, not the code), read for each CPU class:
# - arm_convolve_wrapper_s8: 1x1, no padding, dilation 1 -> arm_convolve_1x1_s8_fast (stride 1) or
#   arm_convolve_1x1_s8; input height 1, output width % 4 == 0, dilation.w 1, filter height 1 ->
#   arm_convolve_1_x_n_s8 (MVE; otherwise it calls arm_convolve_s8); else arm_convolve_s8.
# - arm_convolve_s8: im2col of 4 output pixels (MVE) or 2 (otherwise), read from the input into the
#   scratch, then arm_nn_mat_mul_core_4x_s8 / arm_nn_mat_mult_s8 / arm_nn_mat_mult_kernel_s8_s16
#   write those pixels from the scratch and the filter only: Walk(4 or 2, reads_first).
# - arm_convolve_1x1_s8_fast: one arm_nn_mat_mult_nt_t_s8 over all pixels. Its MVE path takes 4
#   pixels (rows) at a time and, output channel by output channel, reads the 4 rows and writes 4
#   outputs: Walk(4). Its DSP and plain paths take two output channels outermost and read every
#   pixel for each pair: no walk.
# - arm_convolve_1x1_s8: one arm_nn_mat_mult_nt_t_s8 per output row, over that row's pixels: a
#   whole output row at a time on every path (MVE groups of 4 lie inside it): Walk(row).
# - arm_convolve_1_x_n_s8 (MVE): 4 output pixels at a time, through arm_nn_mat_mul_core_4x_s8 on
#   the input itself or arm_nn_mat_mul_core_1x_s8 pixel by pixel: Walk(4).
# - arm_depthwise_conv_wrapper_s8: multiplier 1, batch 1, dilation 1 -> arm_depthwise_conv_3x3_s8
#   (not MVE; 3x3, padding <= 1) or arm_depthwise_conv_s8_opt; else arm_depthwise_conv_s8.
# - arm_depthwise_conv_3x3_s8: pixel by pixel, 4 channels at a time, reads then writes: Walk(1).
# - arm_depthwise_conv_s8_opt: MVE: channel blocks of CH_IN_BLOCK_MVE (124) outermost, then im2col
#   of 4 pixels and arm_nn_depthwise_conv_nt_t(_padded)_s8 from the scratch: Walk(4, reads_first)
#   with one block, no walk with more (each block reads every pixel again). DSP: pixel by pixel
#   through a q15 im2col: Walk(1, reads_first). Plain: arm_depthwise_conv_s8.
# - arm_depthwise_conv_s8: pixel by pixel (multiplier in tiles of 4, or one output at a time): Walk(1).
CH_IN_BLOCK_MVE = 124


def _arm_4_conv(layer: Layer, cpu: str) -> Walk | None:
    s = _shape(layer)
    if s["pointwise"]:
        if s["unit_stride"]:
            return Walk(4, reads_first=False) if cpu == "mve" else None
        return Walk(s["row"], reads_first=False)
    v, x, f = s["v"], s["x"], s["f"]
    if cpu == "mve" and x.h == 1 and v["output_dims"].w % 4 == 0 and v["dilation"][1] == 1 and f.h == 1:
        return Walk(4, reads_first=False)
    return Walk(4, reads_first=True) if cpu == "mve" else Walk(2, reads_first=True)


def _arm_depthwise(layer: Layer, cpu: str) -> Walk | None:
    """4.0.0 and 7.0.0 alike, once past 7.0.0's one-input-channel case."""
    v = layer.values
    f, x = v["filter_dims"], v["input_dims"]
    if v["ch_mult"] == 1 and x.n == 1 and tuple(v["dilation"]) == (1, 1):
        if cpu != "mve" and (f.h, f.w) == (3, 3) and max(v["padding"]) <= 1:
            return PER_PIXEL  # arm_depthwise_conv_3x3_s8
        if cpu == "mve":
            return Walk(4, reads_first=True) if x.c <= CH_IN_BLOCK_MVE else None
        if cpu == "dsp":
            return Walk(1, reads_first=True)
    return PER_PIXEL  # arm_depthwise_conv_s8


ARM_4_0_0 = Release(
    "CMSIS-NN 4.0.0",
    {name: frozenset(digests) for name, digests in {
        "arm_convolve_wrapper_s8.c": {"a274232bc713f8fdd06e17d249bc6f82173c0297e8b843bbae2895fb7e4c29d6"},
        "arm_convolve_s8.c": {"1c1cdf9fc96d2717b70fcec8c57085818c6bca05f9363ea6cc495e1432eb9e68"},
        "arm_convolve_1x1_s8_fast.c": {"0621c7780076974673eb55d07c6ef195b8bae42640b01c9c308a2249f0ad66f9",
                                       "c45e80f5d472adc6bcfdef6269d38120db17d1ea7b23e99eab26e2c334b0fe99"},
        "arm_convolve_1x1_s8.c": {"4039c6246f27f3a805817b68073e4f9a599b67cebc647b5fc8b1ca8be9dbdb4c",
                                  "f805ed70d7a43a24069d6fb86ae48c68b61e3596fa55dd65c107e84b9948025c"},
        "arm_convolve_1_x_n_s8.c": {"744ba8cf1b5f2b6ffb07eba1f6b4d9c694039d7dd7f3c747f9bba1c8d13c4640"},
        "arm_nn_mat_mult_nt_t_s8.c": {"22c07d959aa11960844a2e54aee01c9af6d5a78a1880f634a92d6acf9947b281"},
        "arm_nn_mat_mul_core_4x_s8.c": {"3a01e3b9befd2a1a424d68f69aded5b3415cf8cf0ecc7e45f27cc02a22d65e1d"},
        "arm_nn_mat_mul_core_1x_s8.c": {"4f775fb372b3decfcc12a6b1f6eaa0b77c47dadf00d5ee4677142e48af004259"},
        "arm_nn_mat_mult_s8.c": {"c26e28a2e053f81c1c3068f1faf746e44178186ee4d9edd70ca9c17ab2b3a5bd"},
        "arm_nn_mat_mult_kernel_s8_s16.c": {
            "7e5da0f23fe6180b06eb0a8de6d532e0f7fa46615071a0322766dc514db9f2a1"},
        "arm_q7_to_q15_with_offset.c": {"acd8e32e5bf3ee50a965a68b42f431cd5533bb0f6399f68e998340388d0c0612"},
        "arm_depthwise_conv_wrapper_s8.c": {
            "78b3573be69568bab69b0ecfe27a202e8a5d85bb6614bca81274149c985c314c"},
        "arm_depthwise_conv_3x3_s8.c": {"0904a02a497b5bb3523b9bfb52ffa7fa0404458221c5abad5b8a88bd9d8422cc"},
        "arm_depthwise_conv_s8_opt.c": {"28bfa1416b04eb78569b221f6e999a7a1a676f5c5e0dc3066e6cce4230207563"},
        "arm_depthwise_conv_s8.c": {"5777348073148c1d3f6a353bda21847320806c0f08044b3e4810230a39498944",
                                    "403a9bb753a55c9be1f43b0fb7b558999c7c1c55152a0d90ea30571c004e55e2"},
        "arm_nn_depthwise_conv_nt_t_s8.c": {
            "9075b39169ffa0a473e15bf878fc99a515b869ee004a5889a26a0ee106d8e4e8"},
        "arm_nn_depthwise_conv_nt_t_padded_s8.c": {
            "353606e214446234cedbb81517bf41324a2a5b43f939355ae61425fcdab9b019"},
        "arm_nnsupportfunctions.h": {"ecad78ddb1abb0737c9beed6fdc750303bde5d7e98c8bcb92f10a21c954f2ca6"},
    }.items()},
    conv=_arm_4_conv,
    depthwise=_arm_depthwise,
)


# Arm's CMSIS-NN 7.0.0, where it differs from 4.0.0 (compiled with GCC, as mcudeploy builds it):
# - arm_convolve_wrapper_s8 also requires an ungrouped filter for the 1x1 and 1 x n kernels, and
#   takes 1 x n for (stride.w * C_in) % 4 == 0 whatever the output width.
# - arm_convolve_s8 loops over the groups outermost (each group reads every pixel again: no walk
#   when grouped); within a group, im2col of 4 pixels (MVE, then arm_nn_mat_mult_nt_t_s8 on the
#   scratch) or 2 (q15 columns, then arm_nn_mat_mult_kernel_s8_s16): Walk(4 or 2, reads_first).
# - arm_convolve_1x1_s8_fast: its buffered DSP path is for Arm's compiler only; with GCC it is one
#   arm_nn_mat_mult_nt_t_s8 as in 4.0.0 (MVE 4 rows at a time; DSP and plain channel pairs outermost).
# - arm_convolve_1_x_n_s8 (MVE) copies the padded pixels at both ends into the scratch around a
#   direct pass over the middle ones: not walked here (no overlap); otherwise arm_convolve_s8.
# - arm_depthwise_conv_wrapper_s8 (MVE) turns one input channel into more than one output channel
#   into a convolution (arm_transpose_s8 of the filter into the scratch, then the convolution wrapper).
def _arm_7_conv(layer: Layer, cpu: str) -> Walk | None:
    s = _shape(layer)
    v, x, f = s["v"], s["x"], s["f"]
    if s["pointwise"] and not s["grouped"]:
        if s["unit_stride"]:
            return Walk(4, reads_first=False) if cpu == "mve" else None
        return Walk(s["row"], reads_first=False)
    if (x.h == 1 and v["dilation"][1] == 1 and f.h == 1 and (v["stride"][1] * x.c) % 4 == 0
            and not s["grouped"] and cpu == "mve"):
        return None
    if s["grouped"]:
        return None
    return Walk(4, reads_first=True) if cpu == "mve" else Walk(2, reads_first=True)


def _arm_7_depthwise(layer: Layer, cpu: str) -> Walk | None:
    v = layer.values
    if cpu == "mve" and v["input_dims"].c == 1 and v["output_dims"].c > 1:
        f = v["filter_dims"]
        as_conv = replace(layer, values={**v, "filter_dims": Dims(f.c, f.h, f.w, 1)})
        return _arm_7_conv(as_conv, cpu)
    return _arm_depthwise(layer, cpu)


ARM_7_0_0 = Release(
    "CMSIS-NN 7.0.0",
    {name: frozenset({digest}) for name, digest in {
        "arm_convolve_wrapper_s8.c": "3eada553dacee6cd32c195dcce5e3ca166c279cbb8dac357fd28f79dbf3ff1f3",
        "arm_convolve_s8.c": "a968f1cc5d19ef89bb5f9384a6af956cf1aaabcc9b5f7481069a59aafa083d5b",
        "arm_convolve_1x1_s8_fast.c": "2344d4f50ae47a67c6f4d32fb2c68307a68cb98697aa35a55ae91309b706bcae",
        "arm_convolve_1x1_s8.c": "56e53bf06603eb5b75e455fa91a6c1a650a8038062dbb49c572a1f4fe87cc4b7",
        "arm_convolve_1_x_n_s8.c": "dfd6bb779cfac165e799156d28fda549fda3f174e31baf9a4d2cf0c82b6b5832",
        "arm_nn_mat_mult_nt_t_s8.c": "50e714f19778df42cbc60e358bf716b6a6cef46c35fd897f429e6e6adebd4a78",
        "arm_nn_mat_mult_kernel_s8_s16.c": "144c7751c94c22c61222d1c0369127be36d05f637d3d90997cf3f7dca4251a42",
        "arm_nn_mat_mult_kernel_row_offset_s8_s16.c":
            "ab0578b7d6f4e68ca36b3703ef115faac561da0502a709c0e5145e6db390d721",
        "arm_q7_to_q15_with_offset.c": "7d3ab53e51527b83378f52477b3f2729397d258e38aa9eceb3d6ceced7c1061c",
        "arm_s8_to_s16_unordered_with_offset.c":
            "fb04e819e13ee61177d8ccbcdfc6d3b512cadd94cf3fec0dfadc157939e33de2",
        "arm_depthwise_conv_wrapper_s8.c": "2123c3827228deb94aab586d99b89efb7fd94bf6f97448eb68e3e8940e3aa408",
        "arm_depthwise_conv_3x3_s8.c": "5e896798702f9c3814dd45a78c0a283fdadaf591dbfc87ae1f4344a834e8a450",
        "arm_depthwise_conv_s8_opt.c": "c2a642c34a1d3b5471e5a21448f79942b65342732367cd167e49ce5e7e54b601",
        "arm_depthwise_conv_s8.c": "5777348073148c1d3f6a353bda21847320806c0f08044b3e4810230a39498944",
        "arm_nn_depthwise_conv_nt_t_s8.c": "9075b39169ffa0a473e15bf878fc99a515b869ee004a5889a26a0ee106d8e4e8",
        "arm_nn_depthwise_conv_nt_t_padded_s8.c":
            "353606e214446234cedbb81517bf41324a2a5b43f939355ae61425fcdab9b019",
        "arm_transpose_s8.c": "5a59b700b6408d2293dbb1de2f8014f5f337023b8f65e4ba43411c3037de56b3",
        "arm_nnsupportfunctions.h": "891f62fca60714634eb3036ec226ea0408be4daf040d73e34fed864372f77793",
    }.items()},
    conv=_arm_7_conv,
    depthwise=_arm_7_depthwise,
)

RELEASES: tuple[Release, ...] = (NNREF, ARM_4_0_0, ARM_7_0_0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@per_content
def release_of(library: NNLibrary) -> Release | None:
    """The release whose every file read is in `library`, byte for byte; None if there is none."""
    by_name: dict[str, Path] = {}
    for path in library.sources:
        by_name.setdefault(path.name, path)
    for folder in library.include_dirs:
        for header in sorted(Path(folder).glob("*.h")):
            by_name.setdefault(header.name, header)
    for release in RELEASES:
        if all(name in by_name and _sha256(by_name[name]) in digests
               for name, digests in release.files.items()):
            return release
    return None


OVERLAP_TEMPLATES = {"conv2d.c.j2": "conv", "depthwise_conv2d.c.j2": "depthwise"}


# mcudeploy's generated kernels, read from their templates (mcudeploy/codegen/templates) with
# _mcd.j2's im2col (reads only the window's pixels inside the input, memset for the padding) and
# copy (size bytes, the tail predicated); mcdk.h's helpers compute on the words given them, and
# MCDK_STEP is a compiler barrier. No pointer is `restrict`. The shift takes the layer's own
# generated values (a fully connected layer as its 1x1 convolution: one pixel per row).
# - mcd_conv_dsp: two output pixels at a time (the last alone when the count is odd): both pixels'
#   inputs (im2col, or the pixels themselves for a direct 1x1) widened into the scratch, then every
#   output channel of both written from the scratch and the constants: Walk(2, reads_first).
# - mcd_conv_mve: pixel by pixel. With im2col, the window is copied into the scratch before any
#   output of the pixel: Walk(1, reads_first). Direct (1x1 read in place), each block of 4 output
#   channels reads the pixel again after the blocks before it were written, and the last block
#   (4 channels, or the rest of C_out, stored predicated) after the pixel's last read:
#   Walk(1, last_bytes=C_out - 4 * (blocks - 1)).
# - mcd_depthwise_dsp and mcd_depthwise_mve (undilated): a ring of input rows in the scratch;
#   before each output row, the rows not yet copied (whole rows) up to the last its windows reach,
#   then the row's outputs from the ring only: access_order.ring_shift.
def _generated_conv(layer: Layer) -> int:
    v = layer.values
    if v["isa"] == "dsp":
        walk = Walk(2, reads_first=True)
    elif v["direct"]:
        walk = Walk(1, reads_first=False, last_bytes=v["cout"] - (v["cout_pad"] - 4))
    else:
        walk = Walk(1, reads_first=True)
    return overlap_shift(Window.of(layer), walk)


def _generated_depthwise(layer: Layer) -> int | None:
    if tuple(layer.values["dilation"]) != (1, 1):
        return None
    return ring_shift(Window.of(layer))


@dataclass(frozen=True)
class GeneratedKernel:
    """A generated kernel: the SHA-256 of each file read for its order (its template, _mcd.j2 and
    mcdk's headers), and its shift for a layer lowered as it."""

    digests: dict[str, str]
    shift: Callable[[Layer], int | None]


_SHARED = {
    "_mcd.j2": "baa5eca7a9bdf246817290af5de4cb041eb1d16ace6a6c1d9a8d9f2a70854577",
    "mcdk.h": "bde743a1c7ab693c955884c653c01bfb2fb38cc237d30d98664dd1f19e4d4396",
    "mcdk_mve_portable.h": "8c1010224e1b310d2701a5c5e2941626b40d11707a79c790216b1319211faa6d",
}
GENERATED: dict[str, GeneratedKernel] = {
    "mcd_conv_dsp.c.j2": GeneratedKernel(
        {**_SHARED, "mcd_conv_dsp.c.j2":
         "97b9b7b525b39c0b5089f0be0a94b9b3092631db351e16a636e7aff42f1627c8"},
        _generated_conv),
    "mcd_conv_mve.c.j2": GeneratedKernel(
        {**_SHARED, "mcd_conv_mve.c.j2":
         "17093bb9b8ef911088ed1ad12b4f9042e6166150a35a9f2dbfa4aa1dac48e0d4"},
        _generated_conv),
    "mcd_depthwise_dsp.c.j2": GeneratedKernel(
        {**_SHARED, "mcd_depthwise_dsp.c.j2":
         "c0811a2163b959ddedc733800dde3956ef2aab84fdefde0528c163288cb5bf42"},
        _generated_depthwise),
    "mcd_depthwise_mve.c.j2": GeneratedKernel(
        {**_SHARED, "mcd_depthwise_mve.c.j2":
         "43c8e4cc20be87012832d62f1d853e878476236da3188bb5162afa859f7c0801"},
        _generated_depthwise),
}


def generated_file(name: str) -> Path:
    """Where a file a generated kernel is made of lives: mcdk's headers in firmware/include, the
    templates in mcudeploy/codegen/templates."""
    if name in HEADERS:
        return firmware_dir() / "include" / name
    return Path(__file__).parent / "templates" / name


@functools.cache
def _file_digest(path: Path) -> str:
    return _sha256(path)


def generated_kernel(template: str) -> GeneratedKernel | None:
    """The generated kernel of `template`, when every file it was read from is unchanged."""
    kernel = GENERATED.get(template)
    if kernel is None or any(_file_digest(generated_file(name)) != digest
                             for name, digest in kernel.digests.items()):
        return None
    return kernel


def layer_shift(layer: Layer, library: NNLibrary, cpu_class: str) -> int | None:
    """How many bytes below its input `layer`'s output may start, proved from the code of the
    library's kernel or of the generated kernel it is lowered as; None when the library, the kernel
    or the layer (batch > 1) is not covered."""
    if layer.template in GENERATED:
        kernel = generated_kernel(layer.template)
        return None if kernel is None or layer.values["input_dims"].n != 1 else kernel.shift(layer)
    kind = OVERLAP_TEMPLATES.get(layer.template)
    if kind is None or layer.values["input_dims"].n != 1:
        return None
    release = release_of(library)
    if release is None:
        return None
    walk = getattr(release, kind)(layer, cpu_class)
    if walk is None:
        return None
    return overlap_shift(Window.of(layer), walk)
