"""CMSIS packs made from nnref, since Arm's pack cannot be downloaded in CI: the same layout (a
.pdsc naming the component `Cclass="CMSIS" Cgroup="NN Lib"`, Include/, Source/), reproducing the
API generations of Arm's releases (`api`), checked against Arm's headers locally
(scripts/arm_releases.py):
  - "7" (7.0.0, main): nnref as it is: 7-argument `arm_vector_sum_s8`, per-channel fully connected,
    `arm_maximum_s8`/`arm_minimum_s8`, grouped convolution (`row_address_offset` declared);
  - "6" (6.0.0): 6-argument `arm_vector_sum_s8` `(..., lhs_offset, bias_data)` and fully
    connected kernels that want plain row sums in their buffer (which that function gives with
    lhs_offset 1 and no bias), then scale them by the input offset and add the bias themselves;
    no per-channel fully connected, no maximum/minimum;
  - "5" (5.0.0): as "6" with a 4-argument `arm_vector_sum_s8` `(buf, cols, rows, data)`; no
    grouped convolution: the conv wrapper refuses C_f < C_in, as an old CMSIS-NN would not (it
    would miscompute; refusing makes a missed split visible);
  - "4" (4.0.0): no `arm_vector_sum_s8`, fully connected kernels that need no kernel sums, and no
    host-side `_dsp`/`_mve` scratch queries (sized on the device);
and optionally
  - float_files: Arm's main since 2026: float kernels listed in the .pdsc without a condition
    that do not compile with the board's flags (nor for the host: one is a scratch query);
  - extremum_fault: Arm's 7.0.0 and main: maximum/minimum skip a row per row when one operand
    broadcasts per row ([N, H, 1, 1] against [N, H, W, C]);
  - arm_queries: the scratch queries laid out as in Arm's packs (one `*_get_buffer_sizes_s8.c`
    per kind, including arm_nnsupportfunctions.h, the plain query choosing by the compiler's
    feature macros) and answering different sizes per CPU class;
  - under_planned: the convolution query wanting more scratch when compiled for the device than
    when compiled for the host, which plans with it.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from mcudeploy.resources import nnref_dir

PDSC = """<?xml version="1.0" encoding="UTF-8"?>
<package schemaVersion="1.7.7">
  <name>{name}</name>
  <vendor>{vendor}</vendor>
  <description>Test pack: mcudeploy's nnref laid out as a CMSIS-NN pack</description>
  <releases>
    <release version="{version}">This release.</release>{older}
  </releases>
  <components>
    <component Cclass="CMSIS" Cgroup="NN Lib" Cversion="{version}">
      <description>CMSIS-NN API</description>
      <files>
        <file category="doc" name="README.txt"/>
{files}
      </files>
    </component>
  </components>
</package>
"""

# Convolution, depthwise and average-pool queries answering per CPU class (fully connected keeps
# nnref's answer: its MVE kernel sums are part of the functions' contract).
ARM_QUERIES = {
    "ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c": """
int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(const cmsis_nn_conv_params *conv_params,
    const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims)
{
    (void)conv_params; (void)output_dims;
    return 16 * input_dims->c * filter_dims->h * filter_dims->w + 5;
}

int32_t arm_convolve_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_conv_params *conv_params,
    const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims)
{
    (void)conv_params; (void)output_dims;
    return 4 * input_dims->c * filter_dims->h * filter_dims->w;
}

int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
    const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims)
{
#if defined(__ARM_FEATURE_MVE)
    return arm_convolve_wrapper_s8_get_buffer_size_mve(conv_params, input_dims, filter_dims, output_dims);
#elif defined(__ARM_FEATURE_DSP)
    return arm_convolve_wrapper_s8_get_buffer_size_dsp(conv_params, input_dims, filter_dims, output_dims);
#else
    (void)conv_params; (void)output_dims;
    return 2 * input_dims->c * filter_dims->h * filter_dims->w;
#endif
}
""",
    "ConvolutionFunctions/arm_depthwise_conv_get_buffer_sizes_s8.c": """
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(const cmsis_nn_dw_conv_params *dw_conv_params,
    const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims)
{
    (void)dw_conv_params; (void)filter_dims; (void)output_dims;
    return arm_nn_test_scratch_words(input_dims->c) * 4;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(const cmsis_nn_dw_conv_params *dw_conv_params,
    const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims)
{
    (void)dw_conv_params; (void)filter_dims; (void)output_dims;
    return arm_nn_test_scratch_words(input_dims->c) * 2;
}

int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
    const cmsis_nn_dims *input_dims, const cmsis_nn_dims *filter_dims, const cmsis_nn_dims *output_dims)
{
#if defined(__ARM_FEATURE_MVE)
    return arm_depthwise_conv_wrapper_s8_get_buffer_size_mve(dw_conv_params, input_dims, filter_dims,
                                                             output_dims);
#elif defined(__ARM_FEATURE_DSP)
    return arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(dw_conv_params, input_dims, filter_dims,
                                                             output_dims);
#else
    (void)dw_conv_params; (void)filter_dims; (void)output_dims;
    return arm_nn_test_scratch_words(input_dims->c);
#endif
}
""",
    "PoolingFunctions/arm_avgpool_get_buffer_sizes_s8.c": """
int32_t arm_avgpool_s8_get_buffer_size_mve(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    return 4 * ch_src;
}

int32_t arm_avgpool_s8_get_buffer_size_dsp(const int dim_dst_width, const int ch_src)
{
    return 2 * dim_dst_width * ch_src;
}

int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src)
{
#if defined(__ARM_FEATURE_MVE)
    return arm_avgpool_s8_get_buffer_size_mve(dim_dst_width, ch_src);
#elif defined(__ARM_FEATURE_DSP)
    return arm_avgpool_s8_get_buffer_size_dsp(dim_dst_width, ch_src);
#else
    return dim_dst_width * ch_src;
#endif
}
""",
    # A query helper in another file: the host must then compile the whole library.
    "NNSupportFunctions/arm_nn_test_scratch_words.c": """
int32_t arm_nn_test_scratch_words(int32_t channels)
{
    return 3 * channels + 1;
}
""",
}
ARM_QUERY_HEADER = '#include "arm_nnfunctions.h"\n#include "arm_nnsupportfunctions.h"\n'
REPLACED_QUERIES = ("arm_convolve_wrapper_s8_get_buffer_size",
                    "arm_depthwise_conv_wrapper_s8_get_buffer_size", "arm_avgpool_s8_get_buffer_size")


def arm_query_sizes(cpu_class: str, kind: str, *, channels: int, kernel: int = 1, width: int = 1) -> int:
    """What the arm_queries pack answers: kind "conv" (C_in, KH*KW), "dw_conv" (C_in), "avgpool"."""
    conv = {"mve": 16 * channels * kernel + 5, "dsp": 4 * channels * kernel, "plain": 2 * channels * kernel}
    words = 3 * channels + 1
    dw = {"mve": 4 * words, "dsp": 2 * words, "plain": words}
    pool = {"mve": 4 * channels, "dsp": 2 * width * channels, "plain": width * channels}
    return {"conv": conv, "dw_conv": dw, "avgpool": pool}[kind][cpu_class]


GENERATIONS = ("4", "5", "6", "7")
END_OF_HEADER = "#ifdef __cplusplus\n}\n#endif"
GROUPED_DECLARATION = """
/* Test pack: the declaration that came with grouped convolution (CMSIS-NN 6.0.0). */
arm_cmsis_nn_status arm_nn_mat_mult_nt_t_s8(const int8_t *lhs, const int8_t *rhs, const int32_t *bias,
    int8_t *dst, const int32_t *dst_multipliers, const int32_t *dst_shifts, const int32_t lhs_rows,
    const int32_t rhs_rows, const int32_t rhs_cols, const int32_t lhs_offset, const int32_t dst_offset,
    const int32_t activation_min, const int32_t activation_max, const int32_t row_address_offset,
    const int32_t lhs_cols_offset);
"""
VECTOR_SUM = {
    "6": ("const int32_t lhs_offset, const int32_t *bias_data",
          "vector_sum_buf[r] = (bias_data != NULL ? bias_data[r] : 0) + lhs_offset * sum;"),
    "5": ("", "vector_sum_buf[r] = sum;"),
}
VECTOR_SUM_C = """/* Test pack: arm_vector_sum_s8 of CMSIS-NN {api}.0.0. */
#include "arm_nnfunctions.h"

#include <stddef.h>

arm_cmsis_nn_status arm_vector_sum_s8(int32_t *vector_sum_buf, const int32_t vector_cols,
                                      const int32_t vector_rows, const int8_t *vector_data{params})
{{
    for (int32_t r = 0; r < vector_rows; r++)
    {{
        int32_t sum = 0;
        for (int32_t c = 0; c < vector_cols; c++)
        {{
            sum += (int32_t)vector_data[(size_t)r * (size_t)vector_cols + (size_t)c];
        }}
        {store}
    }}
    return ARM_CMSIS_NN_SUCCESS;
}}
"""
FLOAT_FILES = {
    # As in Arm's main: guarded by ARM_NN_ENABLE_F16, which the .pdsc does not set.
    "BasicMathFunctions/arm_elementwise_add_f16.c":
        "arm_cmsis_nn_status arm_elementwise_add_f16(const float16_t *a, const float16_t *b,\n"
        "                                            float16_t *out, int32_t size)\n{\n"
        "    float16x8_t x = vld1q(a);\n    (void)b; (void)out; (void)size; (void)x;\n"
        "    return ARM_CMSIS_NN_SUCCESS;\n}\n",
    "NNSupportFunctions/arm_get_buffer_size_f16.c":
        "int32_t arm_convolve_wrapper_f16_get_buffer_size(const float16_t *unused)\n{\n"
        "    (void)unused;\n    return 0;\n}\n",
}
EXTREMUM_FAULT = """/* Test pack: the row-broadcast fault of Arm's CMSIS-NN 7.0.0: an operand of shape
 * [N, H, 1, 1] against [N, H, W, C] advances two rows per output row. */
static int32_t faulty_row(const cmsis_nn_dims *in, const cmsis_nn_dims *out, int32_t h)
{
    const int32_t per_row = in->w == 1 && in->c == 1 && in->h == out->h && out->h > 1 && out->w * out->c > 1;
    return per_row ? (2 * h) % in->h : h;
}

"""


def make_pack(root: Path, version: str = "7.0.0", *, api: str = "7", float_files: bool = False,
              extremum_fault: bool = False, arm_queries: bool = False, under_planned: bool = False,
              vendor: str = "ARM", name: str = "CMSIS-NN") -> Path:
    """A pack directory at `root` holding nnref as API generation `api` (see the module docstring
    for the generations and variants)."""
    shutil.copytree(nnref_dir() / "Include", root / "Include")
    shutil.copytree(nnref_dir() / "Source", root / "Source")
    (root / "README.txt").write_text(f"nnref as a CMSIS pack (API {api}), for mcudeploy's tests\n")
    _generation(root, api)
    if float_files:
        for path, body in FLOAT_FILES.items():
            (root / "Source" / path).write_text('#include "arm_nnfunctions.h"\n\n' + body)
    if extremum_fault:
        path = root / "Source/NNSupportFunctions/arm_nn_extremum_s8.c"
        _edit(path, "arm_cmsis_nn_status arm_nn_extremum_s8(",
              EXTREMUM_FAULT + "arm_cmsis_nn_status arm_nn_extremum_s8(")
        for k, dims in ((0, "input_1_dims"), (1, "input_2_dims")):
            _edit(path, f"arm_nn_broadcast_offset(&walk, {k}, n, h, w)",
                  f"arm_nn_broadcast_offset(&walk, {k}, n, faulty_row({dims}, output_dims, h), w)")
    if arm_queries:
        for query in REPLACED_QUERIES:
            for suffix in ("", "_dsp", "_mve"):
                next(root.glob(f"Source/*/{query}{suffix}.c")).unlink()
        for path, body in ARM_QUERIES.items():
            (root / "Source" / path).write_text(ARM_QUERY_HEADER + body)
        _edit(root / "Include/arm_nnsupportfunctions.h", "#ifdef __cplusplus\n}\n#endif",
              "int32_t arm_nn_test_scratch_words(int32_t channels);\n\n#ifdef __cplusplus\n}\n#endif")
    if under_planned:
        _edit(root / "Source/ConvolutionFunctions/arm_convolve_wrapper_s8_get_buffer_size.c",
              "    return 0;\n",
              "#if defined(__arm__)\n    return 64; /* on the device only */\n#endif\n    return 0;\n")
    files = [f'        <file category="header" name="{p.relative_to(root)}"/>'
             for p in sorted((root / "Include").glob("*.h"))]
    files += [f'        <file category="source" name="{p.relative_to(root)}"/>'
              for p in sorted((root / "Source").rglob("*.c"))]
    (root / f"{vendor}.{name}.pdsc").write_text(
        PDSC.format(name=name, vendor=vendor, version=version, files="\n".join(files), older=_older(version)))
    return root


def _older(version: str) -> str:
    """An older release beside `version`, except in Arm's git tree (0.0.0, its only release)."""
    return "" if version == "0.0.0" else '\n    <release version="1.0.0">An older one.</release>'


def zip_pack(directory: Path, target: Path) -> Path:
    """The pack directory as a .pack file (a zip of its contents)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return target


def _generation(root: Path, api: str) -> None:
    """Reshape nnref's API into generation `api` (GENERATIONS)."""
    functions, headers = root / "Include/arm_nnfunctions.h", root / "Include/arm_nnsupportfunctions.h"
    if api >= "6":
        _edit(headers, END_OF_HEADER, GROUPED_DECLARATION + "\n" + END_OF_HEADER)
    else:
        _edit(root / "Source/ConvolutionFunctions/arm_convolve_wrapper_s8.c", "    (void)bias_dims;\n",
              "    (void)bias_dims;\n    if (filter_dims->c != input_dims->c)\n    {\n"
              "        return ARM_CMSIS_NN_ARG_ERROR; /* this release has no grouped convolution */\n    }\n")
    if api == "7":
        return
    for function in ("arm_fully_connected_per_channel_s8", "arm_fully_connected_wrapper_s8", "arm_maximum_s8",
                     "arm_minimum_s8", "arm_vector_sum_s8"):
        _remove_declaration(functions, function)
        next(root.glob(f"Source/*/{function}.c")).unlink()
    if api in VECTOR_SUM:
        params, store = VECTOR_SUM[api]
        body = VECTOR_SUM_C.format(api=api, params=", " + params if params else "", store=store)
        (root / "Source/FullyConnectedFunctions/arm_vector_sum_s8.c").write_text(body)
        declaration = ("arm_cmsis_nn_status arm_vector_sum_s8(int32_t *vector_sum_buf,\n"
                       "    const int32_t vector_cols, const int32_t vector_rows, const int8_t *vector_data"
                       f"{', ' + params if params else ''});\n")
        _edit(functions, END_OF_HEADER, declaration + "\n" + END_OF_HEADER)
    core = root / "Source/NNSupportFunctions/arm_nn_fully_connected_core_s8.c"
    if api in ("5", "6"):  # the kernel sums are plain row sums: the kernel applies the offset and bias
        _edit(core, "            acc += kernel_sum[o];\n",
              "            acc += input_offset * kernel_sum[o] + (bias_data != NULL ? bias_data[o] : 0);\n")
        _edit(core, "    (void)bias_data;\n    (void)input_offset;\n", "")
    if api == "4":  # kernels that compute everything themselves; scratch only asked on the device
        _edit(core, "#if NNREF_USE_FC_KERNEL_SUMS\n    /* MVE", "#if 0\n    /* MVE")
        _edit(core, "#if NNREF_USE_FC_KERNEL_SUMS\n            for", "#if 0\n            for")
        _edit(root / "Source/FullyConnectedFunctions/arm_fully_connected_s8_get_buffer_size.c",
              "#if NNREF_USE_FC_KERNEL_SUMS", "#if 0")
        for query in ("arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8", "arm_fully_connected_s8",
                      "arm_avgpool_s8"):  # the _dsp/_mve variants become private to the plain query's file
            plain = next(root.glob(f"Source/*/{query}_get_buffer_size.c"))
            private = []
            for suffix in ("_dsp", "_mve"):
                _remove_declaration(functions, f"{query}_get_buffer_size{suffix}")
                path = plain.with_name(f"{query}_get_buffer_size{suffix}.c")
                private.append(path.read_text().replace(f"int32_t {query}_get_buffer_size{suffix}(",
                                                        "__attribute__((unused)) static int32_t "
                                                        f"{query}_get_buffer_size{suffix}("))
                path.unlink()
            plain.write_text("".join(private) + plain.read_text())


def _remove_declaration(header: Path, function: str) -> None:
    text = header.read_text()
    pattern = re.compile(rf"^[A-Za-z_][\w \t]*\b{function}\([^;]*\);\n", re.M)
    assert len(pattern.findall(text)) == 1, f"{header}: {function}"
    header.write_text(pattern.sub("", text))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {old!r}"
    path.write_text(text.replace(old, new))


def pack_from_tree(tree: Path, root: Path, version: str) -> Path:
    """A pack directory at `root` holding a copy of a CMSIS-NN source tree: every folder named
    Include is an include directory, every .c file a source."""
    shutil.copytree(tree, root)
    (root / "README.txt").write_text(f"{tree} as a CMSIS pack, for mcudeploy's tests\n")
    files = [f'        <file category="include" name="{p.relative_to(root)}/"/>'
             for p in sorted(root.rglob("Include")) if p.is_dir()]
    files += [f'        <file category="source" name="{p.relative_to(root)}"/>'
              for p in sorted(root.rglob("*.c"))]
    (root / "ARM.CMSIS-NN.pdsc").write_text(
        PDSC.format(name="CMSIS-NN", vendor="ARM", version=version, files="\n".join(files),
                    older=_older(version)))
    return root
