"""CMSIS packs made from nnref, since Arm's pack cannot be downloaded here: the same layout (a
.pdsc naming the component `Cclass="CMSIS" Cgroup="NN Lib"`, Include/, Source/), optionally
  - old: a release before grouped convolution, whose conv wrapper refuses C_f < C_in as an old
    CMSIS-NN would not (it would miscompute; refusing makes a missed fallback visible);
  - arm_queries: the scratch queries laid out as in Arm's packs (one `*_get_buffer_sizes_s8.c`
    per kind, including arm_nnsupportfunctions.h, the plain query choosing by the compiler's
    feature macros) and answering different sizes per CPU class;
  - under_planned: the convolution query wanting more scratch when compiled for the device than
    when compiled for the host, which plans with it.
"""

from __future__ import annotations

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
    <release version="{version}">This release.</release>
    <release version="1.0.0">An older one.</release>
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


def make_pack(root: Path, version: str = "7.0.0", *, old: bool = False, arm_queries: bool = False,
              under_planned: bool = False, vendor: str = "ARM", name: str = "CMSIS-NN") -> Path:
    """A pack directory at `root` holding nnref (see the module docstring for the variants)."""
    shutil.copytree(nnref_dir() / "Include", root / "Include")
    shutil.copytree(nnref_dir() / "Source", root / "Source")
    (root / "README.txt").write_text("nnref as a CMSIS pack, for mcudeploy's tests\n")
    if old:
        _edit(root / "Source/ConvolutionFunctions/arm_convolve_wrapper_s8.c", "    (void)bias_dims;\n",
              "    (void)bias_dims;\n    if (filter_dims->c != input_dims->c)\n    {\n"
              "        return ARM_CMSIS_NN_ARG_ERROR; /* this release has no grouped convolution */\n    }\n")
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
        PDSC.format(name=name, vendor=vendor, version=version, files="\n".join(files)))
    return root


def zip_pack(directory: Path, target: Path) -> Path:
    """The pack directory as a .pack file (a zip of its contents)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return target


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
        PDSC.format(name="CMSIS-NN", vendor="ARM", version=version, files="\n".join(files)))
    return root
